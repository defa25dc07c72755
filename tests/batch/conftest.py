"""Ready model versions of estimators fitted here (built by ModelVersionFactory), and the input
files batch jobs score."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from registry.models import ModelVersion
from tests.factories import ModelAliasFactory, ModelVersionFactory

FEATURES = ["age", "income", "tenure", "score"]


def make_frame(rows: int, *, seed: int = 0) -> pd.DataFrame:
    """Features plus two id columns (one that only survives as text: zero-padded)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))).round(4), columns=FEATURES)
    frame.insert(0, "customer_id", [f"c{i:06d}" for i in range(rows)])
    frame.insert(1, "branch", [f"{i % 7:03d}" for i in range(rows)])
    return frame


@pytest.fixture(scope="session")
def classifier() -> Any:
    """A pipeline fitted on a DataFrame: its signature has named columns, three classes."""
    frame = make_frame(300, seed=1)
    labels = np.digitize(frame["age"] + frame["income"], [-0.5, 0.5])
    labels = np.array(["low", "mid", "high"])[labels]
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[FEATURES], labels)


@pytest.fixture(scope="session")
def regressor() -> Any:
    """Fitted on a bare array: its signature names the columns f0..f3."""
    frame = make_frame(200, seed=2)
    target = frame[FEATURES].to_numpy() @ np.array([1.0, -2.0, 0.5, 3.0])
    return Ridge().fit(frame[FEATURES].to_numpy(), target)


def register(estimator: Any, *, name: str, alias: str | None = None) -> ModelVersion:
    """A READY version exactly as the registry would store it, without the upload pipeline."""
    columns = getattr(estimator, "feature_names_in_", None)
    example_columns = list(columns) if columns is not None else [f"f{i}" for i in range(4)]
    version: ModelVersion = ModelVersionFactory.create(
        model__name=name,
        estimator=estimator,
        input_example=[dict.fromkeys(example_columns, 0.5)],
    )
    if alias:
        ModelAliasFactory.create(version=version, alias=alias)
    return version


@pytest.fixture
def churn(db: Any, classifier: Any) -> ModelVersion:
    return register(classifier, name="churn", alias="production")


@pytest.fixture
def spend(db: Any, regressor: Any) -> ModelVersion:
    return register(regressor, name="spend")


@pytest.fixture
def write_input(tmp_path: Path) -> Callable[..., Path]:
    """Write a frame as CSV or Parquet (small row groups, so chunks span several)."""

    def write(frame: pd.DataFrame, fmt: str = "csv", *, name: str = "input") -> Path:
        path = tmp_path / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False, row_group_size=64)
        return path

    return write


def regressor_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows with the columns a bare-array model takes (f0..f3)."""
    renamed = frame.rename(columns={name: f"f{i}" for i, name in enumerate(FEATURES)})
    return renamed
