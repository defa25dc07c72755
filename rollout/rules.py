"""Gate rules: a small grammar read with regular expressions, never evaluated as code.

    <metric> <op> <number>                      roc_auc >= 0.9
    <metric> <op> production [+|-] <number>     roc_auc >= production - 0.01
    <metric> <op> <number> * production         p95_latency_ms <= 1.2 * production

`op` is one of >=, >, <=, <, ==. A relative rule compares a candidate with the version the
gated alias points at now, measured on the same dataset.
"""

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlplatform.errors import ApplicationError

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2")
COMMON_METRICS = ("rows_per_second", "p50_latency_ms", "p95_latency_ms")
METRICS = {
    "classification": CLASSIFICATION_METRICS + COMMON_METRICS,
    "regression": REGRESSION_METRICS + COMMON_METRICS,
}
ALL_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS + COMMON_METRICS
# Lower is better for these; the page colours deltas with it.
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "p50_latency_ms", "p95_latency_ms"})

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
_UNSIGNED = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER = rf"[+-]?{_UNSIGNED}"
_RULE = re.compile(r"^\s*(?P<metric>[a-z][a-z0-9_]*)\s*(?P<op>>=|<=|==|>|<)\s*(?P<rhs>.+?)\s*$")
_ABSOLUTE = re.compile(rf"^(?P<number>{_NUMBER})$")
_OFFSET = re.compile(rf"^production(?:\s*(?P<sign>[+-])\s*(?P<number>{_UNSIGNED}))?$")
_SCALE = re.compile(rf"^(?P<number>{_NUMBER})\s*\*\s*production$")
MAX_RULES = 50
MAX_RULE_LENGTH = 200


@dataclass(frozen=True)
class Rule:
    text: str
    metric: str
    op: str
    kind: str  # "absolute" | "offset" | "scale"
    number: float

    @property
    def relative(self) -> bool:
        return self.kind != "absolute"

    def threshold(self, production: float | None) -> float | None:
        if self.kind == "absolute":
            return self.number
        if production is None:
            return None
        if self.kind == "offset":
            return production + self.number
        return self.number * production


@dataclass(frozen=True)
class Verdict:
    rule: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "passed": self.passed,
            "value": self.value,
            "threshold": self.threshold,
            "detail": self.detail,
        }


def rule_parse(text: Any, *, task: str | None = None) -> Rule:
    """One rule; `task` ("classification" | "regression") limits the metrics it may name.

    Raises:
        ApplicationError: bad syntax, an unknown metric or one the task does not measure,
            naming the rule.
    """
    if not isinstance(text, str) or not text.strip():
        raise ApplicationError(
            f"rules: {text!r} is not a rule; write e.g. 'roc_auc >= 0.9'.",
            extra={"field": "rules", "rule": text if isinstance(text, str) else None},
        )
    if len(text) > MAX_RULE_LENGTH:
        raise ApplicationError(
            f"rules: a rule is at most {MAX_RULE_LENGTH} characters.",
            extra={"field": "rules", "rule": text[:MAX_RULE_LENGTH]},
        )
    found = _RULE.match(text)
    if found is None:
        raise _syntax(text)
    metric, op, rhs = found["metric"], found["op"], found["rhs"]
    if metric not in ALL_METRICS:
        raise ApplicationError(
            f"rules: {text!r} names an unknown metric {metric!r}; the evaluation measures "
            f"{', '.join(METRICS.get(task or '', ALL_METRICS))}.",
            extra={"field": "rules", "rule": text},
        )
    if task in METRICS and metric not in METRICS[task]:
        raise ApplicationError(
            f"rules: {text!r}: {metric} is not measured for a {task} model; use one of "
            f"{', '.join(METRICS[task])}.",
            extra={"field": "rules", "rule": text},
        )
    if (absolute := _ABSOLUTE.match(rhs)) is not None:
        kind, number = "absolute", float(absolute["number"])
    elif (offset := _OFFSET.match(rhs)) is not None:
        number = float(offset["number"] or 0)
        kind, number = "offset", -number if offset["sign"] == "-" else number
    elif (scale := _SCALE.match(rhs)) is not None:
        kind, number = "scale", float(scale["number"])
    else:
        raise _syntax(text)
    if not math.isfinite(number):
        raise _syntax(text)
    return Rule(text=" ".join(text.split()), metric=metric, op=op, kind=kind, number=number)


def _syntax(text: str) -> ApplicationError:
    return ApplicationError(
        f"rules: {text!r} is not a rule. Write '<metric> <op> <number>', "
        "'<metric> <op> production [+|-] <number>' or '<metric> <op> <number> * production', "
        "with op one of >=, >, <=, <, ==.",
        extra={"field": "rules", "rule": text},
    )


def rules_parse(texts: Any, *, task: str | None = None) -> list[Rule]:
    """A gate's rules. Raises ApplicationError naming the first bad one."""
    if not isinstance(texts, list) or not texts:
        raise ApplicationError(
            "rules: a non-empty list of rules is required.", extra={"field": "rules"}
        )
    if len(texts) > MAX_RULES:
        raise ApplicationError(f"rules: at most {MAX_RULES} rules.", extra={"field": "rules"})
    return [rule_parse(text, task=task) for text in texts]


def verdicts(
    rules: Sequence[Rule],
    metrics: dict[str, Any],
    production: dict[str, Any] | None,
    *,
    production_label: str = "production",
) -> list[Verdict]:
    """Each rule against a candidate's metrics; `production` is the current version's metrics
    on the same dataset, or None when the alias points at no version yet (relative rules then
    pass, and say so)."""
    answers = []
    for rule in rules:
        value = _number(metrics.get(rule.metric))
        if rule.relative and production is None:
            answers.append(
                Verdict(
                    rule.text,
                    True,
                    value,
                    None,
                    f"passes: {production_label} points at no version yet to compare with",
                )
            )
            continue
        base = _number((production or {}).get(rule.metric)) if rule.relative else None
        if rule.relative and base is None:
            answers.append(
                Verdict(
                    rule.text,
                    False,
                    value,
                    None,
                    f"{rule.metric} was not measured for {production_label}",
                )
            )
            continue
        threshold = rule.threshold(base)
        if value is None or threshold is None:
            answers.append(
                Verdict(rule.text, False, value, threshold, f"{rule.metric} was not measured")
            )
            continue
        passed = OPERATORS[rule.op](value, threshold)
        relation = "" if passed else "not "
        answers.append(
            Verdict(
                rule.text,
                passed,
                value,
                threshold,
                f"{rule.metric} = {value:.6g} is {relation}{rule.op} {threshold:.6g}",
            )
        )
    return answers


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
