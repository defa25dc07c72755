"""Ready model versions of tiny fitted estimators, built by ModelVersionFactory (no upload
pipeline)."""

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from registry.models import ModelAlias, ModelVersion
from serving import selectors
from tests.factories import ModelVersionFactory

IRIS_COLUMNS = ["f0", "f1", "f2", "f3"]


def _fit_all() -> dict[str, tuple[Any, list[dict[str, Any]]]]:
    iris = load_iris()
    x, y = iris.data, iris.target_names[iris.target]
    classifier = LogisticRegression(max_iter=500).fit(x, y)
    rng = np.random.default_rng(0)
    xr = rng.normal(size=(40, 3))
    regressor = LinearRegression().fit(xr, xr @ np.array([1.0, -2.0, 0.5]) + 3)
    broken = LinearRegression().fit(xr, xr[:, 0])
    broken.coef_ = np.array([np.nan, 0.0, 0.0])  # predicts NaN for every row
    clusters = KMeans(n_clusters=2, n_init=1, random_state=0).fit(xr)
    outliers = IsolationForest(n_estimators=10, random_state=0).fit(xr)
    frame = pd.DataFrame(
        {"x": rng.normal(size=30), "color": rng.choice(["red", "green", "blue"], size=30)}
    )
    labels = (frame["x"] > 0).astype(int)
    pipeline = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["x"]),
                        ("cat", OneHotEncoder(handle_unknown="error"), ["color"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, labels)
    numeric3 = [{"f0": 0.1, "f1": -0.2, "f2": 0.3}]
    return {
        "iris": (classifier, [dict(zip(IRIS_COLUMNS, map(float, x[0]), strict=True))]),
        "reg": (regressor, numeric3),
        "broken": (broken, numeric3),
        "km": (clusters, numeric3),
        "iso": (outliers, numeric3),
        "colors": (pipeline, [{"x": 0.5, "color": "red"}]),
    }


@pytest.fixture(scope="session")
def fitted() -> dict[str, tuple[Any, list[dict[str, Any]]]]:
    return _fit_all()


@pytest.fixture
def make_version(fitted: dict) -> Callable[..., ModelVersion]:
    """make_version("iris") → a ready version of the fitted estimator under that key."""

    def make(key: str, *, name: str | None = None, number: int = 1) -> ModelVersion:
        estimator, example = fitted[key]
        version: ModelVersion = ModelVersionFactory.create(
            model__name=name or key, version=number, estimator=estimator, input_example=example
        )
        return version

    return make


def alias_set(version: ModelVersion, alias: str = "production") -> None:
    ModelAlias.objects.update_or_create(
        model=version.model, alias=alias, defaults={"version": version}
    )


@pytest.fixture(autouse=True)
def _serving_settings(settings: Any) -> None:
    """Every test sees the database as it is now (no resolution cached across tests), and
    sampled log entries are written at once."""
    settings.MLPLATFORM_ALIAS_TTL_SECONDS = 0
    settings.MLPLATFORM_LOG_BACKGROUND = False
    selectors.resolution_cache_clear()


@pytest.fixture
def iris(db: Any, make_version: Callable[..., ModelVersion]) -> ModelVersion:
    return make_version("iris")
