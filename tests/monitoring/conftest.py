"""A monitored classifier (two numeric columns and a text one), the rows it was trained on, and
prediction log partitions written in the log's Parquet layout
(`prediction-log/model=<id>/date=<YYYY-MM-DD>/hour=<HH>/<version>-<writer>.parquet`)."""

import io
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from serving import selectors
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory

NUMERIC = ["amount", "age"]
CITIES = ["paris", "lyon", "nice"]
COLUMNS = [*NUMERIC, "city"]
TARGET = "churned"


def rows_like_training(rows: int, *, seed: int = 0) -> pd.DataFrame:
    """Rows drawn from the training distribution: amount ~ N(100, 15), age ~ N(40, 8), city
    paris 50 % / lyon 30 % / nice 20 %, and a label that depends on them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(100, 15, rows).round(3),
            "age": rng.normal(40, 8, rows).round(3),
            "city": rng.choice(CITIES, size=rows, p=[0.5, 0.3, 0.2]),
        }
    )
    score = (frame["amount"] - 100) / 15 - (frame["age"] - 40) / 8 + rng.normal(0, 0.5, rows)
    frame[TARGET] = np.where(score > 0, "yes", "no")
    return frame


@pytest.fixture(scope="session")
def churn_estimator() -> Any:
    frame = rows_like_training(600, seed=1)
    encode = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    return make_pipeline(encode, LogisticRegression()).fit(frame[COLUMNS], frame[TARGET])


@pytest.fixture(autouse=True)
def _fresh_resolutions() -> Iterator[None]:
    """Models named alike in other tests (rolled back, ids reused) are not resolved from this
    process's cache of routes."""
    selectors.resolution_cache_clear()
    yield
    selectors.resolution_cache_clear()


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    """A media folder of the test's own (log partitions and reference samples of earlier tests
    are not seen). Not for tests with a worker process, which keeps the session's folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def team(db: Any) -> Any:
    return TeamFactory.create(name="data")


@pytest.fixture
def churn(team: Any, churn_estimator: Any) -> Any:
    """A ready version 1 of the model `churn`, owned by the team `data`."""
    model = RegisteredModelFactory.create(name="churn", owner=team)
    example = [{"amount": 100.0, "age": 40.0, "city": "paris"}]
    return ModelVersionFactory.create(model=model, estimator=churn_estimator, input_example=example)


def log_frame(
    version: Any,
    inputs: pd.DataFrame,
    *,
    at: datetime,
    role: str = "primary",
    rows_per_request: int = 100,
) -> pd.DataFrame:
    """The prediction log's rows for `inputs` predicted by `version` at `at`: in__ columns
    (numbers as float64, text as strings, None kept as null), out__prediction and out__proba__."""
    estimator = version_estimator(version)
    complete = inputs.notna().all(axis=1).to_numpy()
    n = len(inputs)
    predictions = np.full(n, None, dtype=object)
    probabilities = np.full((n, 2), np.nan)
    if complete.any():
        predictions[complete] = estimator.predict(inputs[complete])
        probabilities[complete] = estimator.predict_proba(inputs[complete])
    frame = pd.DataFrame(
        {
            "request_id": [f"r{at:%Y%m%d%H}-{role}-{i // rows_per_request}" for i in range(n)],
            "ts": pd.Series([pd.Timestamp(at)] * n).astype("datetime64[us, UTC]"),
            "version": np.full(n, version.version, dtype=np.int32),
            "role": role,
            "protocol": "native",
            "row": (np.arange(n) % rows_per_request).astype(np.int32),
            "latency_ms": 1.5,
        }
    )
    for name in NUMERIC:
        frame[f"in__{name}"] = inputs[name].astype("float64").to_numpy()
    frame["in__city"] = inputs["city"].astype(object).where(inputs["city"].notna(), None)
    frame["out__prediction"] = predictions
    for index, label in enumerate(estimator.classes_):
        frame[f"out__proba__{label}"] = probabilities[:, index]
    return frame


_estimators: dict[str, Any] = {}


def version_estimator(version: Any) -> Any:
    """The fitted estimator behind a factory-made version (the test's own, by its sha256)."""
    if version.sha256 not in _estimators:
        with version.artifact.open("rb") as handle:
            _estimators[version.sha256] = joblib.load(io.BytesIO(handle.read()))
    return _estimators[version.sha256]


def log_write(version: Any, inputs: pd.DataFrame, *, at: datetime, role: str = "primary") -> str:
    """Store `inputs` as one prediction log partition file of `version` at hour `at` (UTC)."""
    table = pa.Table.from_pandas(log_frame(version, inputs, at=at, role=role), preserve_index=False)
    table = table.cast(
        pa.schema(
            [
                pa.field(f.name, pa.string()) if f.name in ("out__prediction", "in__city") else f
                for f in table.schema
            ]
        )
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    name = (
        f"prediction-log/model={version.model_id}/date={at:%Y-%m-%d}/hour={at:%H}/"
        f"{version.version}-{uuid.uuid4().hex[:8]}.parquet"
    )
    return default_storage.save(name, ContentFile(buffer.getvalue()))
