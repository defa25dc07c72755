"""The promotion gate: may a gated alias (MLPLATFORM_GATED_ALIASES, default `production`)
point at a version?

A model with a gate lets a gated alias move to a version only when that version's latest
evaluation on the gate's dataset passes every rule; relative rules compare it with the version
the alias points at now (measured on the same dataset). A version not evaluated yet is queued
for evaluation and the move is refused until it is done. A user holding
`rollout.override_gate` may move it anyway by giving a reason; the alias's audit trail records
an override with that reason. Rollbacks are never gated: they return to a version that served.
"""

from typing import Any

from mlplatform.errors import ConflictError
from registry.models import ModelVersion, RegisteredModel
from rollout import rules, selectors, services
from rollout.models import Evaluation

OVERRIDE_PERMISSION = "rollout.override_gate"


def may_override(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False)) and bool(
        user.has_perm(OVERRIDE_PERMISSION)
    )


def gate_check(
    *,
    model: RegisteredModel,
    alias: str,
    version: ModelVersion,
    previous: ModelVersion | None,
    user: Any,
    reason: str,
    kind: str,
) -> dict[str, Any] | None:
    """None when the gate lets the move through, {"override": True} when only the override
    did.

    Raises:
        ConflictError: the version failed a rule (`failed` lists the rules, `verdicts` has
            each rule's value and threshold), or it (or the alias's current version, for
            relative rules) has not been evaluated yet (`job` names the evaluation job).
    """
    if kind == "rollback" or alias not in services.gated_aliases():
        return None
    gate = selectors.gate_of(model=model)
    if gate is None:
        return None
    reason = (reason or "").strip()
    refusal = _refusal(
        gate=gate, model=model, alias=alias, version=version, previous=previous, user=user
    )
    if refusal is None:
        return None
    if reason and may_override(user):
        return {"override": True}
    if reason:
        refusal.message += (
            f" An override reason was given, but overriding needs the permission "
            f"{OVERRIDE_PERMISSION}."
        )
        refusal.args = (refusal.message,)
    elif may_override(user):
        refusal.message += " You may override it by giving a reason (override_reason)."
        refusal.args = (refusal.message,)
    raise refusal


def _refusal(
    *,
    gate: Any,
    model: RegisteredModel,
    alias: str,
    version: ModelVersion,
    previous: ModelVersion | None,
    user: Any,
) -> ConflictError | None:
    dataset = gate.dataset
    label = f"{model.name} v{version.version}"
    candidate = selectors.evaluation_latest(version=version, dataset=dataset)
    waiting = _waiting(candidate, version=version, dataset=dataset, user=user, label=label)
    if waiting is not None:
        return waiting
    assert candidate is not None
    production = None
    needs_production = any(rules.rule_parse(text).relative for text in gate.rules)
    if previous is not None and needs_production:
        production = selectors.evaluation_latest(version=previous, dataset=dataset)
        waiting = _waiting(
            production,
            version=previous,
            dataset=dataset,
            user=user,
            label=f"{model.name} v{previous.version} (what {alias} points at now)",
        )
        if waiting is not None:
            return waiting
    verdicts = selectors.gate_verdicts(
        gate=gate,
        candidate=candidate,
        production=production,
        production_version=previous,
        alias=alias,
    )
    failed = [v for v in verdicts if not v.passed]
    if not failed:
        return None
    return ConflictError(
        f"{label} did not pass the promotion gate of {model.name} for {alias}: "
        + "; ".join(f"{v.rule} ({v.detail})" for v in failed)
        + ".",
        extra={
            "failed": [v.rule for v in failed],
            "verdicts": [v.as_dict() for v in verdicts],
            "evaluation": candidate.pk,
        },
    )


def _waiting(
    found: Evaluation | None, *, version: ModelVersion, dataset: Any, user: Any, label: str
) -> ConflictError | None:
    """A refusal while the version has no succeeded evaluation on the dataset: one is queued
    (unless one is already under way) and named."""
    status = found.effective_status if found is not None else None
    if status == Evaluation.Status.SUCCEEDED:
        return None
    if status == Evaluation.Status.FAILED and found is not None:
        return ConflictError(
            f"{label} cannot pass the promotion gate: its evaluation on dataset "
            f"{dataset.name} (#{dataset.pk}) failed ({found.error or 'no reason recorded'}). "
            "Fix the cause and evaluate it again (POST …/evaluations/).",
            extra={"failed": [], "evaluation": found.pk, "job": found.job_id},
        )
    queued = services.evaluation_ensure(version=version, dataset=dataset, user=user)
    return ConflictError(
        f"{label} has not been evaluated on the gate's dataset {dataset.name} (#{dataset.pk}) "
        f"yet: evaluation job {queued.job_id} is {queued.effective_status}. Try again once it "
        "has finished.",
        extra={"failed": [], "evaluation": queued.pk, "job": queued.job_id},
    )
