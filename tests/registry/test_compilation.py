"""ONNX compilation: a graph is kept only when it answers like the model on probe rows; anything
else falls back to runner serving, with the reason recorded."""

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from registry.compilation import compile_or_explain, probe_rows, rows_matrix, session
from registry.graphs import graph_verify
from registry.signature import signature_infer
from registry.types import Column, Signature
from serving.engines import OnnxEngine
from tests.registry.conftest import KINDS

TOLERANCE = 1e-5


def _compiled(estimator: Any, example: list[dict[str, Any]] | None = None) -> tuple[Any, ...]:
    signature = signature_infer(estimator, input_example=example)
    graph, details = compile_or_explain(estimator, signature, example, tolerance=TOLERANCE)
    return signature, graph, details


@pytest.mark.parametrize("kind", KINDS)
def test_every_common_family_compiles_and_matches_on_fresh_rows(
    kind: str, estimators: dict[str, Any], frame: Any
) -> None:
    # given a fitted model of each family the registry tests use
    estimator = estimators[kind]
    signature, graph, details = _compiled(estimator)

    # then it compiled, within tolerance, and the graph passes the stored-graph checks
    assert graph, details
    assert details["max_deviation"] <= TOLERANCE
    graph_verify(graph)
    # and served on rows the probe never saw, it answers as the model does
    X = frame[0].iloc[:20] * 3.0
    engine = OnnxEngine(graph, signature=signature, compilation=details)
    outputs = engine.outputs(X.to_numpy(), ["predict"])
    expected = estimator.predict(X)
    if expected.dtype.kind == "f":
        assert np.allclose(outputs["predict"], expected, atol=1e-6)
    else:
        assert list(map(str, outputs["predict"])) == list(map(str, expected))


def test_text_columns_compile_with_one_input_per_column() -> None:
    frame = pd.DataFrame({"plan": ["basic", "pro", "pro", "basic"] * 5, "age": range(20)})
    pipeline = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["plan"]), (StandardScaler(), ["age"])
        ),
        LogisticRegression(),
    ).fit(frame, [0, 1, 1, 0] * 5)

    signature, graph, details = _compiled(pipeline, [{"plan": "pro", "age": 3}])

    assert details["inputs"] == "columns"
    names = [i.name for i in session(graph).get_inputs()]
    assert names == ["plan", "age"]
    engine = OnnxEngine(graph, signature=signature, compilation=details)
    probe = frame.iloc[:6]
    got = engine.outputs(probe, ["predict", "predict_proba"])
    assert np.allclose(got["predict_proba"], pipeline.predict_proba(probe))


def test_a_model_without_a_converter_falls_back_with_the_reason(frame: Any) -> None:
    X, y, _ = frame
    boosted = HistGradientBoostingClassifier(max_iter=3).fit(X, y)

    _, graph, details = _compiled(boosted)

    # HistGradientBoosting does not convert with this converter release: runners serve it
    assert graph == b""
    assert "float64" in details["fallback_reason"]
    assert "float32" in details["fallback_reason"]


def test_a_graph_outside_the_tolerance_is_not_kept(frame: Any) -> None:
    X, y, _ = frame
    # a boosted model converts only in single precision; with no tolerance at all it must fall
    # back, since float32 sums differ from scikit-learn's float64 ones in the last digits
    boosted = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(X, y)
    signature = signature_infer(boosted)

    graph, details = compile_or_explain(boosted, signature, None, tolerance=0.0)
    loose, loose_details = compile_or_explain(boosted, signature, None, tolerance=1e-4)

    assert graph == b""
    assert "exceeds" in details["fallback_reason"]
    assert loose
    assert loose_details["precision"] == "float32"


def test_probe_rows_cover_the_example_zero_and_every_category() -> None:
    signature = Signature(
        inputs=(
            Column(name="x", dtype="float64"),
            Column(name="plan", dtype="string", categories=("a", "b", "c")),
        )
    )

    rows = probe_rows(signature, [{"x": 42.0, "plan": "b"}])

    assert rows[0] == {"x": 42.0, "plan": "b"}
    assert {"x": 0.0, "plan": "a"} in rows
    assert {row["plan"] for row in rows} == {"a", "b", "c"}
    spread = [abs(row["x"]) for row in rows[1:]]
    assert max(spread) > 100  # several scales, so tree splits go both ways
    assert isinstance(rows_matrix(rows, signature), pd.DataFrame)


def test_regression_compiles_in_double_precision(frame: Any) -> None:
    X, _, y = frame
    forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y)

    _, graph, details = _compiled(forest)

    assert graph
    assert details["max_deviation"] <= TOLERANCE
