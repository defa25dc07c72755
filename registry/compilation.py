"""Compile a validated estimator to an ONNX graph and prove the graph answers like the estimator.

Runs inside the sandbox (`registry.sandbox`), after the artifact was scanned, loaded and its trees
checked: converting walks the estimator's Python objects. The result is data — a graph that
onnxruntime runs in the serving processes — so no web or worker process needs the pickle again.

Conversion tries double precision first (exact for linear models and scalers) and falls back to
single precision, which some tree converters need (scikit-learn's trees compare in float32
anyway). Either way the graph is run on probe rows — the uploader's input example plus rows
synthesised from the signature — and compared with the estimator: labels must be equal and every
number within `tolerance` (absolute, or relative for values larger than 1). A version that does
not convert or does not match is served by sandboxed model runners instead (engine `python`),
with the reason recorded.
"""

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from registry.types import Signature

# The opsets the serving onnxruntime is known to run; pinned so a graph does not depend on
# whatever the converter defaults to in a later release.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
PROBE_ROWS = 64


class CompilationError(Exception):
    """The estimator has no faithful ONNX graph; the message says why, for the version page."""


@dataclass
class Compiled:
    graph: bytes
    details: dict[str, Any] = field(default_factory=dict)


def _classifiers(estimator: Any) -> list[Any]:
    """The classifier objects whose converters take options (the estimator or a final step)."""
    from sklearn.base import is_classifier

    found = []
    if is_classifier(estimator):
        found.append(estimator)
    steps = getattr(estimator, "steps", None)
    if steps:
        found.extend(_classifiers(steps[-1][1]))
    return found


def _first_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return _first_step(steps[0][1]) if steps else estimator


def input_layout(signature: Signature, estimator: Any) -> str:
    """`matrix`: one [rows, n_features] tensor; `columns`: one [rows, 1] tensor per column.

    A column transformer selects its inputs by name and string columns cannot share a tensor
    with numbers, so those take one tensor per column; everything else takes the matrix, which
    is one array copy per request instead of one per column.
    """
    if any(c.dtype == "string" or c.categories for c in signature.inputs):
        return "columns"
    if getattr(_first_step(estimator), "transformers_", None) is not None:
        return "columns"
    return "matrix"


def _initial_types(signature: Signature, layout: str, precision: str) -> list[Any]:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    number = DoubleTensorType if precision == "float64" else FloatTensorType
    if layout == "matrix":
        return [("X", number([None, len(signature.inputs)]))]
    return [
        (c.name, StringTensorType([None, 1]) if c.dtype == "string" else number([None, 1]))
        for c in signature.inputs
    ]


def feed(matrix: Any, *, layout: str, names: list[str], precision: str) -> dict[str, Any]:
    """The onnxruntime inputs for a validated matrix (an array or a DataFrame in signature
    column order). Shared with serving so the probe rows go through the exact same path."""
    number = np.float64 if precision == "float64" else np.float32
    if layout == "matrix":
        array = matrix.to_numpy() if hasattr(matrix, "to_numpy") else matrix
        return {"X": np.ascontiguousarray(array, dtype=number)}
    inputs: dict[str, Any] = {}
    for position, name in enumerate(names):
        column = matrix[name].to_numpy() if hasattr(matrix, "columns") else matrix[:, position]
        if column.dtype == object or column.dtype.kind in "US":
            inputs[name] = np.asarray(column, dtype=object).reshape(-1, 1)
        else:
            inputs[name] = np.asarray(column, dtype=number).reshape(-1, 1)
    return inputs


def _convert(estimator: Any, signature: Signature, layout: str, precision: str) -> bytes:
    from skl2onnx import to_onnx

    options: dict[int, dict[str, Any]] = {id(c): {"zipmap": False} for c in _classifiers(estimator)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = to_onnx(
            estimator,
            initial_types=_initial_types(signature, layout, precision),
            options=options or None,
            target_opset=TARGET_OPSET,
        )
    graph: bytes = model.SerializeToString()
    return graph


def session(graph: bytes) -> Any:
    """An onnxruntime session on one thread: the sandbox and each serving process answer one
    request at a time per thread, and extra pools would only compete for the same cores."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def probe_rows(
    signature: Signature, example: list[dict[str, Any]] | None, *, n: int = PROBE_ROWS
) -> list[dict[str, Any]]:
    """The input example plus rows drawn from the signature: numbers on several scales (so
    trees go both ways at most splits), categories in turn, and a row of zeros."""
    rng = np.random.default_rng(20261201)
    rows = [dict(row) for row in example or []]
    scales = (0.1, 1.0, 10.0, 1000.0)
    for index in range(n):
        row: dict[str, Any] = {}
        for column in signature.inputs:
            name, dtype = column.name, column.dtype
            categories = column.categories
            if categories:
                row[name] = categories[index % len(categories)]
            elif dtype == "string":
                row[name] = ""
            elif dtype == "bool":
                row[name] = bool(index % 2)
            elif index == 0:
                row[name] = 0.0 if dtype != "int64" else 0
            else:
                value = float(rng.normal() * scales[index % len(scales)])
                row[name] = round(value) if dtype == "int64" else value
        rows.append(row)
    return rows


def _deviation(expected: Any, actual: Any) -> float:
    """Largest absolute error, relative where the expected value is larger than 1."""
    expected = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
    actual = np.asarray(actual, dtype=np.float64).reshape(len(actual), -1)
    if expected.shape != actual.shape:
        return float("inf")
    if not (np.isfinite(expected) == np.isfinite(actual)).all():
        return float("inf")
    finite = np.isfinite(expected)
    if not finite.any():
        return 0.0
    scale = np.maximum(1.0, np.abs(expected[finite]))
    return float(np.max(np.abs(expected[finite] - actual[finite]) / scale))


def _labels_equal(expected: Any, actual: Any) -> bool:
    expected = np.asarray(expected).ravel()
    actual = np.asarray(actual).ravel()
    if expected.shape != actual.shape:
        return False
    if expected.dtype.kind in "fc" or actual.dtype.kind in "fc":
        return bool(np.array_equal(expected.astype(np.float64), actual.astype(np.float64)))
    return [str(v) for v in expected] == [str(v) for v in actual]


def _compare(
    estimator: Any, graph: bytes, matrix: Any, details: dict[str, Any], signature: Signature
) -> float:
    """Run both on the probe matrix; the largest deviation, or CompilationError if labels
    differ or an output is missing."""
    names = signature.column_names
    outputs = session(graph).run(
        None, feed(matrix, layout=details["inputs"], names=names, precision=details["precision"])
    )
    predicted = np.asarray(estimator.predict(matrix))
    task = signature.task
    label = outputs[0]
    if task == "regression" or predicted.dtype.kind == "f":
        deviation = _deviation(predicted, label)
    else:
        if not _labels_equal(predicted, label):
            raise CompilationError("the graph's labels differ from the model's on probe rows")
        deviation = 0.0
    if signature.has_predict_proba:
        if len(outputs) < 2:
            raise CompilationError("the graph has no probabilities output")
        deviation = max(deviation, _deviation(estimator.predict_proba(matrix), outputs[1]))
    return deviation


def onnx_compile(
    estimator: Any,
    signature: Signature,
    *,
    matrix: Any,
    tolerance: float,
) -> Compiled:
    """Convert and prove equivalence on `matrix` (the probe rows, built like serving builds its
    input). Raises CompilationError with the reason when no faithful graph exists."""
    layout = input_layout(signature, estimator)
    problems = []
    for precision in ("float64", "float32"):
        details: dict[str, Any] = {"inputs": layout, "precision": precision}
        try:
            graph = _convert(estimator, signature, layout, precision)
            deviation = _compare(estimator, graph, matrix, details, signature)
        except CompilationError as exc:
            problems.append(f"{precision}: {exc}")
            continue
        except Exception as exc:
            # The first line says what failed; converters append whole attribute dumps after it.
            first = (str(exc).strip().splitlines() or [""])[0][:120]
            problems.append(f"{precision}: {type(exc).__name__}: {first}")
            continue
        if deviation > tolerance:
            problems.append(f"{precision}: deviation {deviation:.3g} exceeds {tolerance:g}")
            continue
        details.update(
            {
                "max_deviation": deviation,
                "tolerance": tolerance,
                "probe_rows": len(matrix),
                "opset": dict(TARGET_OPSET),
            }
        )
        return Compiled(graph=graph, details=details)
    raise CompilationError("; ".join(problems))


def rows_matrix(rows: list[dict[str, Any]], signature: Signature) -> Any:
    """Rows as a Python model takes them: a DataFrame when it was fitted on one (or a column
    holds text), else a float matrix, in signature column order."""
    import pandas as pd

    columns = signature.column_names
    text = any(c.dtype == "string" for c in signature.inputs)
    if signature.named_columns or text:
        frame = pd.DataFrame(rows)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"the input example lacks the columns {', '.join(missing)}")
        return frame[columns]
    return np.asarray([[row.get(c, 0) for c in columns] for row in rows], dtype=float)


def zero_rows(signature: Signature) -> list[dict[str, Any]]:
    """One row of zeros; a categorical column gets its first learned category instead."""
    zero = {"string": "", "bool": False, "int64": 0}
    row = {}
    for column in signature.inputs:
        categories = column.categories
        row[column.name] = categories[0] if categories else zero.get(column.dtype, 0.0)
    return [row]


def compile_or_explain(
    estimator: Any,
    signature: Signature,
    example: list[dict[str, Any]] | None,
    *,
    tolerance: float,
) -> tuple[bytes, dict[str, Any]]:
    """The graph and its details, or no graph and `fallback_reason` (the model is then served by
    runners). Probes with synthetic rows, or with the example alone when the model refuses
    those (an encoder that errors on unseen categories, say)."""
    try:
        matrix = rows_matrix(probe_rows(signature, example), signature)
        estimator.predict(matrix)
    except Exception:
        matrix = rows_matrix(example or zero_rows(signature), signature)
    try:
        compiled = onnx_compile(estimator, signature, matrix=matrix, tolerance=tolerance)
    except CompilationError as exc:
        return b"", {"fallback_reason": str(exc)[:2000]}
    return compiled.graph, compiled.details
