"""Versions of a binary classifier (a good one and a poor one) and of a regressor, fitted here
on DataFrames, and the labelled files they are evaluated on."""

import io
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rollout.models import Evaluation
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory

FEATURES = ["age", "income", "tenure"]


def labelled(rows: int, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))).round(4), columns=FEATURES)
    noise = rng.normal(scale=0.7, size=rows)
    frame["churned"] = np.where(frame["age"] - frame["income"] + noise > 0, "yes", "no")
    frame["spend"] = (frame[FEATURES].to_numpy() @ np.array([2.0, -1.0, 0.5]) + noise).round(4)
    return frame


@pytest.fixture(scope="session")
def good_classifier() -> Any:
    frame = labelled(400, seed=1)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(
        frame[FEATURES], frame["churned"]
    )


@pytest.fixture(scope="session")
def poor_classifier() -> Any:
    """Fitted on shuffled labels: about as good as a coin."""
    frame = labelled(400, seed=2)
    shuffled = frame["churned"].sample(frac=1, random_state=3).to_numpy()
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[FEATURES], shuffled)


@pytest.fixture(scope="session")
def regressor() -> Any:
    frame = labelled(300, seed=4)
    return Ridge().fit(frame[FEATURES], frame["spend"])


def version_of(estimator: Any, name: str, **kwargs: Any) -> Any:
    model = RegisteredModelFactory.create(name=name)
    return ModelVersionFactory.create(
        model=model, estimator=estimator, input_example=[dict.fromkeys(FEATURES, 0.5)], **kwargs
    )


@pytest.fixture
def team(db: Any) -> Any:
    return TeamFactory.create(name="data")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def upload(
    client: Any, model: str, data: bytes, *, label: str = "churned", name: str = "f.csv"
) -> Any:
    handle = io.BytesIO(data)
    handle.name = name
    return client.post(
        f"/api/v1/models/{model}/evaluation-datasets/",
        {"file": handle, "label_column": label},
        format="multipart",
    )


def wait_evaluated(version: Any, *, timeout: float = 60) -> Evaluation:
    """The version's newest evaluation once it has finished (run by the real worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = Evaluation.objects.filter(version=version).select_related("job").first()
        if found is not None and not found.pending:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{version} not evaluated after {timeout}s")
