"""Live accuracy: ground truth sent back (`Feedback`) joined to the logged predictions by request
id, per version, role and window, measured with scikit-learn's metric functions.

A feedback entry names a request, not a row: it is joined to the request's first row (`row` 0),
which for the usual one-row request is the request itself. Classifiers get `accuracy` and, when
binary and the request returned probabilities, `roc_auc`; regressors `mae` and `rmse`. Each
window also carries the version's evaluated accuracy (its newest succeeded rollout evaluation,
else the accuracy it was uploaded with) as `baseline`, and `accuracy_drop` = baseline - live.
"""

# DuckDB SQL is assembled from quoted identifiers only.
# ruff: noqa: S608

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn import metrics as skm

from features import offline
from monitoring import predictions
from monitoring.models import Feedback, MonitoringWindow
from registry.models import ModelVersion, RegisteredModel
from rollout.models import Evaluation, Gate

PREDICTION = "out__prediction"
PROBA = "out__proba__"


def label_text(value: Any) -> str:
    """A class label as the log writes it (text)."""
    return value if isinstance(value, str) else str(value)


def baseline(version: ModelVersion) -> dict[str, Any] | None:
    """The accuracy the version is expected to have: its newest succeeded evaluation (on the
    gate's dataset when the model has a gate), else the `accuracy` it was uploaded with."""
    evaluations = Evaluation.objects.filter(
        version=version, status=Evaluation.Status.SUCCEEDED
    ).order_by("-created_at", "-id")
    gate = Gate.objects.filter(model_id=version.model_id).first()
    found = None
    if gate is not None:
        found = evaluations.filter(dataset_id=gate.dataset_id).first()
    found = found or evaluations.first()
    if found is not None and isinstance(found.metrics.get("accuracy"), int | float):
        return {"accuracy": float(found.metrics["accuracy"]), "source": "evaluation"}
    reported = (version.metrics or {}).get("accuracy")
    if isinstance(reported, int | float) and not isinstance(reported, bool):
        return {"accuracy": float(reported), "source": "reported"}
    return None


def _feedback_table(model: RegisteredModel, since: datetime) -> pa.Table:
    """The model's feedback received since `since` (before or after its prediction was
    logged: either may come first)."""
    request_ids, texts, numbers = [], [], []
    for request_id, actual in Feedback.objects.filter(
        model=model, received_at__gte=since
    ).values_list("request_id", "actual"):
        request_ids.append(request_id)
        texts.append(label_text(actual))
        numbers.append(
            float(actual)
            if isinstance(actual, int | float) and not isinstance(actual, bool)
            else None
        )
    return pa.table(
        {
            "request_id": pa.array(request_ids, pa.string()),
            "actual_text": pa.array(texts, pa.string()),
            "actual_number": pa.array(numbers, pa.float64()),
        }
    )


def joined_pairs(
    *, model: RegisteredModel, start: datetime, end: datetime, received_since: datetime
) -> pd.DataFrame:
    """Logged first rows of requests in [start, end) with feedback received since
    `received_since`: `version`, `role`, `ts`, `out__prediction`, `out__proba__*`,
    `actual_text`, `actual_number`."""
    feedback = _feedback_table(model, received_since)
    if feedback.num_rows == 0:
        return pd.DataFrame()
    with predictions.log_view(model_id=model.pk, start=start, end=end, label="accuracy") as log:
        if not log.files or not log.has(PREDICTION) or not log.has("request_id"):
            return pd.DataFrame()
        log.con.register("__feedback", feedback)
        probas = [c for c in log.columns if c.startswith(PROBA)]
        selected = ", ".join(
            f"l.{offline.ident(c)}" for c in ["version", "role", "ts", PREDICTION, *probas]
        )
        row_filter = 'AND l."row" = 0' if log.has("row") else ""
        return log.con.execute(
            f"SELECT {selected}, f.actual_text, "
            f"f.actual_number FROM {predictions.VIEW} l JOIN __feedback f "
            f"ON l.request_id = f.request_id WHERE true {row_filter}"
        ).df()


def figures(pairs: pd.DataFrame, version: ModelVersion) -> dict[str, Any]:
    """The live metrics of one version's joined pairs."""
    result: dict[str, Any] = {"labelled": len(pairs)}
    if pairs.empty:
        return result
    signature = version.signature
    if signature.classes is not None:
        y_true = pairs["actual_text"].astype(str).to_numpy()
        y_pred = pairs[PREDICTION].astype(str).to_numpy()
        result["accuracy"] = float(skm.accuracy_score(y_true, y_pred))
        classes = [label_text(c) for c in signature.classes]
        positive = f"{PROBA}{classes[-1]}" if len(classes) == 2 else ""
        if positive in pairs.columns:
            scores = pairs[positive].to_numpy(dtype=float)
            known = ~np.isnan(scores)
            truth = y_true[known] == classes[-1]
            if known.any() and 0 < truth.sum() < len(truth):
                result["roc_auc"] = float(skm.roc_auc_score(truth, scores[known]))
    else:
        actual = pairs["actual_number"].to_numpy(dtype=float)
        predicted = pd.to_numeric(pairs[PREDICTION], errors="coerce").to_numpy(dtype=float)
        usable = ~(np.isnan(actual) | np.isnan(predicted))
        result["labelled"] = int(usable.sum())
        if usable.any():
            result["mae"] = float(skm.mean_absolute_error(actual[usable], predicted[usable]))
            result["rmse"] = float(skm.root_mean_squared_error(actual[usable], predicted[usable]))
    return result


def accuracy_compute(
    *,
    model: RegisteredModel,
    since: datetime,
    until: datetime,
    received_since: datetime | None = None,
) -> int:
    """Fill `accuracy` of every window of the model starting in [since, until) from the feedback
    received since `received_since` (default: `since`); returns how many windows have labelled
    rows."""
    windows = list(
        MonitoringWindow.objects.filter(model=model, start__gte=since, start__lt=until)
        .select_related("version")
        .order_by("start")
    )
    if not windows:
        return 0
    end = max(w.end for w in windows)
    pairs = joined_pairs(
        model=model,
        start=min(w.start for w in windows),
        end=end,
        received_since=received_since or since,
    )
    if not pairs.empty:
        pairs["ts"] = pd.to_datetime(pairs["ts"], utc=True)
    baselines: dict[int, dict[str, Any] | None] = {}
    labelled = 0
    for window in windows:
        version = window.version
        if version.pk not in baselines:
            baselines[version.pk] = baseline(version)
        if pairs.empty:
            chosen = pairs
        else:
            chosen = pairs[
                (pairs["version"] == version.version)
                & (pairs["role"] == window.role)
                & (pairs["ts"] >= pd.Timestamp(window.start))
                & (pairs["ts"] < pd.Timestamp(window.end))
            ]
        found = figures(chosen, version)
        expected = baselines[version.pk]
        if expected is not None:
            found["baseline"] = expected
            if "accuracy" in found:
                found["accuracy_drop"] = expected["accuracy"] - found["accuracy"]
        labelled += 1 if found["labelled"] else 0
        window.accuracy = found
    MonitoringWindow.objects.bulk_update(windows, ["accuracy"])
    return labelled
