"""trees_check on ordinary models: everything people fit passes, including missing-value splits."""

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.neighbors import BallTree, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from registry.trees import TreeError, trees_check
from tests.registry.conftest import KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_every_fitted_kind_passes(kind: str, estimators: dict[str, Any]) -> None:
    trees_check(estimators[kind])


def test_splits_that_send_only_missing_values_one_way_pass() -> None:
    # given data where a feature is missing exactly when the target is 1: the trees split on
    # "missing or not", which they store as a threshold of +inf
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (rng.random(200) > 0.5).astype(float)
    X[y == 1, 0] = np.nan
    models = [
        DecisionTreeClassifier(random_state=0).fit(X, y),
        RandomForestRegressor(n_estimators=3, random_state=0).fit(X, y),
        HistGradientBoostingRegressor(max_iter=5).fit(X, y),
    ]
    assert np.isposinf(models[0].tree_.threshold[0])
    assert np.isposinf(models[2]._predictors[0][0].nodes["num_threshold"][0])

    # when / then every one of them passes
    for model in models:
        trees_check(model)


def test_neighbours_splines_and_plain_objects_pass() -> None:
    X = np.random.default_rng(1).normal(size=(50, 3))
    for model in (
        KNeighborsRegressor(algorithm="ball_tree").fit(X, X[:, 0]),
        KNeighborsRegressor(algorithm="kd_tree", metric="manhattan").fit(X, X[:, 0]),
        make_pipeline(StandardScaler(), SplineTransformer()).fit(X),
        BallTree(X, metric="mahalanobis", VI=np.eye(3)),
        {"nested": [1, "two", np.arange(3), (None,)]},
    ):
        trees_check(model)


def test_the_walk_is_bounded(estimators: dict[str, Any]) -> None:
    # given a model holding more objects than the bound allows
    with pytest.raises(TreeError, match="more than 10 objects"):
        trees_check(estimators["random_forest"], max_objects=10)


def test_a_shared_or_cyclic_object_graph_is_walked_once() -> None:
    # given containers that refer to each other, the walk still ends
    first: list[Any] = []
    second: list[Any] = [first]
    first.append(second)

    trees_check({"a": first, "b": second})
