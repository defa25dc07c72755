"""Training/serving skew: for versions linked to a feature service, the feature values served
online (logged as `in__<feature>` beside the entity keys `key__<join key>`) compared with the
offline store's point-in-time answer for the same entity at the request's time — the training
set the same rows would have got (`features.training_sets.build`).

Per window a reservoir sample of logged rows (MLPLATFORM_SKEW_SAMPLE_ROWS, repeatable) is
compared; per feature: rows `compared`, `mismatches` and their `rate`. Text values must be equal;
numbers equal within a relative tolerance (MLPLATFORM_SKEW_TOLERANCE); a value on one side only
is a mismatch, nulls on both sides agree.
"""

# DuckDB SQL is assembled from quoted identifiers only.
# ruff: noqa: S608

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from django.conf import settings

from features import offline, online, training_sets
from features.ingestion import EVENT
from features.models import Feature
from mlplatform.errors import ApplicationError
from monitoring import predictions
from monitoring.models import MonitoringWindow
from registry.models import RegisteredModel

logger = logging.getLogger(__name__)

KEY = "key__"
INPUT = "in__"


def _sample(
    log: predictions.LogView,
    *,
    window: MonitoringWindow,
    keys: list[str],
    inputs: list[str],
) -> pd.DataFrame:
    columns = ", ".join(offline.ident(c) for c in ["ts", *keys, *inputs])
    limit = int(settings.MLPLATFORM_SKEW_SAMPLE_ROWS)
    return log.con.execute(
        f"SELECT * FROM (SELECT {columns} FROM {predictions.VIEW} "
        "WHERE version = ? AND role = ? AND ts >= ? AND ts < ?) "
        f"USING SAMPLE reservoir({limit} ROWS) REPEATABLE (7)",
        [window.version.version, window.role, window.start, window.end],
    ).df()


def _agree(served: pd.Series, offline_values: pd.Series, *, text: bool) -> np.ndarray:
    """Row by row, whether the served value equals the offline one."""
    served_missing = served.isna().to_numpy()
    offline_missing = offline_values.isna().to_numpy()
    both = ~served_missing & ~offline_missing
    equal = np.zeros(len(served), dtype=bool)
    if text:
        equal[both] = (
            served[both].astype(str).to_numpy() == offline_values[both].astype(str).to_numpy()
        )
    else:
        left = pd.to_numeric(served[both], errors="coerce").to_numpy(dtype=float)
        right = pd.to_numeric(offline_values[both], errors="coerce").to_numpy(dtype=float)
        tolerance = float(settings.MLPLATFORM_SKEW_TOLERANCE)
        equal[both] = np.isclose(left, right, rtol=tolerance, atol=tolerance, equal_nan=True)
    return equal | (served_missing & offline_missing)


def window_skew(
    log: predictions.LogView, *, window: MonitoringWindow, features: list[Feature]
) -> dict[str, Any]:
    """{feature: {"compared", "mismatches", "rate", "example"?}} for one window."""
    keys = sorted({k for f in features for k in f.group.entity.join_keys})
    if not all(log.has(f"{KEY}{k}") for k in keys):
        return {}
    columns = training_sets.output_columns(features, full_names=False, reserved=[*keys, EVENT])
    logged = [c for c in columns if log.has(f"{INPUT}{c.output}")]
    if not logged:
        return {}
    sample = _sample(
        log,
        window=window,
        keys=[f"{KEY}{k}" for k in keys],
        inputs=[f"{INPUT}{c.output}" for c in logged],
    )
    if sample.empty:
        return {}
    timestamps = pd.to_datetime(sample["ts"], utc=True)
    entities = [
        {
            **{k: (None if pd.isna(row[f"{KEY}{k}"]) else str(row[f"{KEY}{k}"])) for k in keys},
            EVENT: moment.isoformat(),
        }
        for (_, row), moment in zip(sample.iterrows(), timestamps, strict=True)
    ]
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "offline.parquet"
        training_sets.build(
            features=[c.feature for c in logged], output=output, fmt="parquet", rows=entities
        )
        answer = pq.read_table(output).to_pandas()
    result: dict[str, Any] = {}
    for column in logged:
        served = sample[f"{INPUT}{column.output}"].reset_index(drop=True)
        expected = answer[column.output].reset_index(drop=True)
        text = column.feature.dtype in ("string", "category", "str")
        agree = _agree(served, expected, text=text)
        mismatches = int((~agree).sum())
        entry: dict[str, Any] = {
            "compared": len(agree),
            "mismatches": mismatches,
            "rate": mismatches / len(agree),
        }
        if mismatches:
            first = int(np.flatnonzero(~agree)[0])
            entry["example"] = {
                **{k: entities[first][k] for k in keys},
                "ts": entities[first][EVENT],
                "online": _plain(served.iloc[first]),
                "offline": _plain(expected.iloc[first]),
            }
        result[column.output] = entry
    return result


def _plain(value: Any) -> Any:
    """A value JSON can hold (numpy scalars and NaN made plain)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def skew_compute(*, model: RegisteredModel, windows: list[MonitoringWindow]) -> int:
    """Fill `skew` of the windows whose version reads a feature service; returns how many."""
    linked = [w for w in windows if w.version.feature_service_id is not None]
    if not linked:
        return 0
    start = min(w.start for w in linked)
    end = max(w.end for w in linked)
    done = 0
    with predictions.log_view(model_id=model.pk, start=start, end=end, label="skew") as log:
        if not log.files:
            return 0
        for window in linked:
            try:
                features = online.features_resolve(feature_service=window.version.feature_service)
                window.skew = window_skew(log, window=window, features=features)
            except ApplicationError as exc:
                # The offline store refused (a query past its limits, a service changed
                # meanwhile): logged, the window has no skew figures, the run goes on.
                logger.warning("skew of %s not computed: %s", window, exc.message)
                window.skew = {}
            done += 1 if window.skew else 0
    MonitoringWindow.objects.bulk_update(linked, ["skew"])
    return done
