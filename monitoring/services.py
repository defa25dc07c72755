"""Writes for monitoring: ground truth sent back by users (feedback intake) and alert rules.

Feedback: one true label or value per request id and model. Sending it again for the same
request id replaces the earlier value (a correction), counted as `replaced`; the same request id
twice in one upload is refused. Request ids not (yet) found in the prediction log are stored all
the same and counted as `not_joined`: the log is sampled, and a request may be logged after its
feedback arrives, so they are joined at each monitoring run.
"""

import math
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mlplatform import csvfiles
from mlplatform.errors import ApplicationError
from monitoring import alerts, predictions
from monitoring.accuracy import label_text
from monitoring.models import AlertRule, Feedback
from registry.models import ModelVersion, RegisteredModel

MAX_REQUEST_ID = 64
MAX_LABEL = 200


@dataclass(frozen=True)
class FeedbackResult:
    received: int
    created: int
    replaced: int
    joined: int

    def data(self) -> dict[str, int]:
        return {
            "received": self.received,
            "created": self.created,
            "replaced": self.replaced,
            "joined": self.joined,
            "not_joined": self.received - self.joined,
        }


def _newest_ready(model: RegisteredModel) -> ModelVersion | None:
    return (
        ModelVersion.objects.filter(model=model, status=ModelVersion.Status.READY)
        .order_by("-version")
        .first()
    )


def _actual_check(value: Any, *, version: ModelVersion | None, where: str) -> Any:
    """The value as stored: a classifier's class (as the model names it), a regressor's finite
    number. Raises ApplicationError naming `where`."""
    if value is None or isinstance(value, dict | list):
        raise ApplicationError(
            f"{where}.actual: a label or a number is required.", extra={"field": "actual"}
        )
    signature = version.signature if version is not None else None
    if signature is not None and signature.classes is not None:
        text = label_text(value).strip()
        for known in signature.classes:
            number = _number(value)
            if label_text(known) == text or (
                number is not None and not isinstance(known, str) and number == _number(known)
            ):
                return known
        raise ApplicationError(
            f"{where}.actual: {value!r:.80} is not one of the model's classes "
            f"{[label_text(c) for c in signature.classes]}.",
            extra={"field": "actual"},
        )
    if signature is not None and signature.task == "regression":
        number = _number(value)
        if number is None:
            raise ApplicationError(
                f"{where}.actual: {value!r:.80} is not a finite number.", extra={"field": "actual"}
            )
        return number
    if isinstance(value, str) and 0 < len(value.strip()) <= MAX_LABEL:
        return value.strip()
    if isinstance(value, bool) or _number(value) is not None:
        return value
    raise ApplicationError(
        f"{where}.actual: {value!r:.80} is not a label (1 to {MAX_LABEL} characters) or a "
        "finite number.",
        extra={"field": "actual"},
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _request_id_check(value: Any, *, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ApplicationError(
            f"{where}.request_id: a request id (text) is required.", extra={"field": "request_id"}
        )
    text = str(value).strip()
    if not text or len(text) > MAX_REQUEST_ID:
        raise ApplicationError(
            f"{where}.request_id: must be 1 to {MAX_REQUEST_ID} characters.",
            extra={"field": "request_id"},
        )
    return text


def feedback_rows_from_csv(stream: IO[bytes]) -> list[dict[str, Any]]:
    """The `request_id` and `actual` columns of a CSV upload, as text.

    Raises:
        ApplicationError: not UTF-8 CSV, ragged rows (naming the lines), a column missing.
    """
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "feedback.csv"
        with path.open("wb") as sink:
            for chunk in iter(lambda: stream.read(1024 * 1024), b""):
                sink.write(chunk)
        try:
            header = [name.strip() for name in csvfiles.header_read(path)]
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApplicationError(
                f"file: not a UTF-8 CSV file ({exc}).", extra={"field": "file"}
            ) from exc
        missing = [name for name in ("request_id", "actual") if name not in header]
        if missing:
            raise ApplicationError(
                f"file: missing column(s) {missing}; the header is {header[:20]}.",
                extra={"field": "file"},
            )
        try:
            table = csvfiles.table_read(path, header=header)
        except csvfiles.RaggedRowsError as exc:
            raise ApplicationError(f"file: {exc.message}", extra={"field": "file"}) from exc
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise ApplicationError(
                f"file: not a CSV file ({exc}).", extra={"field": "file"}
            ) from exc
    return table.select(["request_id", "actual"]).to_pylist()


def _joined_count(model: RegisteredModel, request_ids: list[str]) -> int:
    """How many of the request ids the prediction log holds (over the lookback period)."""
    now = timezone.now()
    start = now - timedelta(days=float(settings.MLPLATFORM_FEEDBACK_LOOKBACK_DAYS))
    with predictions.log_view(
        model_id=model.pk, start=start, end=now + timedelta(hours=1), label="feedback"
    ) as log:
        if not log.files or not log.has("request_id"):
            return 0
        log.con.register("__ids", pa.table({"request_id": pa.array(request_ids, pa.string())}))
        found = log.con.execute(
            f"SELECT count(*) FROM __ids WHERE request_id IN "  # noqa: S608 - fixed names
            f"(SELECT request_id FROM {predictions.VIEW})"
        ).fetchone()
    return int(found[0]) if found else 0


def feedback_record(*, model: RegisteredModel, items: list[Any]) -> FeedbackResult:
    """Store the true label or value of logged requests (`{"request_id", "actual"}` each).

    Raises:
        ApplicationError: no items, too many, an item that is not an object, a bad request id or
            value (naming its position), the same request id twice. Nothing is stored then.
    """
    if not items:
        raise ApplicationError("feedback: send at least one {request_id, actual} item.")
    limit = int(settings.MLPLATFORM_FEEDBACK_MAX_ITEMS)
    if len(items) > limit:
        raise ApplicationError(
            f"feedback: {len(items)} items exceed the limit of {limit} per request "
            "(MLPLATFORM_FEEDBACK_MAX_ITEMS).",
        )
    version = _newest_ready(model)
    values: dict[str, Any] = {}
    for index, item in enumerate(items):
        where = f"[{index}]"
        if not isinstance(item, dict):
            raise ApplicationError(f"{where}: each item must be an object.")
        unknown = sorted(set(item) - {"request_id", "actual"})
        if unknown:
            raise ApplicationError(
                f"{where}: unknown field(s) {unknown}; send request_id and actual.",
                extra={"field": unknown[0]},
            )
        request_id = _request_id_check(item.get("request_id"), where=where)
        if request_id in values:
            raise ApplicationError(
                f"{where}.request_id: {request_id!r} appears more than once.",
                extra={"field": "request_id"},
            )
        values[request_id] = _actual_check(item.get("actual"), version=version, where=where)
    now = timezone.now()
    with transaction.atomic():
        existing = {
            f.request_id: f
            for f in Feedback.objects.select_for_update().filter(
                model=model, request_id__in=list(values)
            )
        }
        for request_id, found in existing.items():
            found.actual = values[request_id]
            found.received_at = now
        Feedback.objects.bulk_update(list(existing.values()), ["actual", "received_at"])
        Feedback.objects.bulk_create(
            [
                Feedback(model=model, request_id=request_id, actual=actual)
                for request_id, actual in values.items()
                if request_id not in existing
            ]
        )
    return FeedbackResult(
        received=len(values),
        created=len(values) - len(existing),
        replaced=len(existing),
        joined=_joined_count(model, list(values)),
    )


def rules_replace(*, model: RegisteredModel, rules: list[dict[str, Any]]) -> list[AlertRule]:
    """Replace the model's alert rules with `rules` (each `metric`, `column`, `threshold`,
    `enabled`): a rule kept (same metric and column) keeps its alerts; a rule left out is
    deleted with its alerts.

    Raises:
        ApplicationError: a rule that does not check (alerts.rule_check), or the same metric and
            column twice. Nothing changes then.
    """
    checked = [
        alerts.rule_check(model=model, rule=rule, where=f"[{i}]") for i, rule in enumerate(rules)
    ]
    seen: set[tuple[str, str]] = set()
    for index, rule in enumerate(checked):
        key = (rule["metric"], rule["column"])
        if key in seen:
            raise ApplicationError(
                f"[{index}]: a rule on {key[0]} for column {key[1] or '(any)'!r} is given twice.",
                extra={"field": "column"},
            )
        seen.add(key)
    with transaction.atomic():
        current = {(r.metric, r.column): r for r in AlertRule.objects.filter(model=model)}
        kept = []
        for rule in checked:
            found = current.pop((rule["metric"], rule["column"]), None)
            if found is None:
                found = AlertRule(model=model, metric=rule["metric"], column=rule["column"])
            found.threshold = rule["threshold"]
            found.enabled = rule["enabled"]
            found.full_clean()
            found.save()
            kept.append(found)
        AlertRule.objects.filter(pk__in=[r.pk for r in current.values()]).delete()
    return kept
