"""Infer what a fitted estimator takes and returns, from the estimator itself.

Needs scikit-learn: it runs in the confined validator (and in tests). The signature's type,
which web processes read, is `registry/types.py`.
"""

from typing import Any

import numpy as np
from sklearn.base import is_classifier, is_clusterer, is_outlier_detector, is_regressor

from registry.types import Column, Dtype, Output, Signature, Task


def _task_of(estimator: Any) -> Task:
    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    if is_outlier_detector(estimator):
        return "anomaly_detection"
    if is_clusterer(estimator):
        return "clustering"
    return "other"


def _dtype_of_values(values: list[Any]) -> Dtype:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int64"
    if present and all(isinstance(v, str) for v in present):
        return "string"
    return "float64"


def to_jsonable(value: Any) -> Any:
    """numpy scalars and arrays to plain Python, for JSON fields."""
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def _describe(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if steps:
        return " → ".join(type(step).__name__ for _, step in steps)
    return type(estimator).__name__


def _first_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return _first_step(steps[0][1]) if steps else estimator


def categorical_inputs(estimator: Any) -> dict[str, list[Any]]:
    """Input columns an encoder reads as categories, with the categories it learned.

    Looks at what sees the raw input: the first step of a pipeline, a ColumnTransformer's
    transformers (and their first steps), or an encoder itself. Numeric categories are ignored
    (the column is still numeric); text categories make the column a string input.
    """
    first = _first_step(estimator)
    found: dict[str, list[Any]] = {}
    transformers = getattr(first, "transformers_", None)
    pairs: list[tuple[Any, list[str]]] = []
    if transformers is not None:
        for _name, transformer, columns in transformers:
            if isinstance(transformer, str) or not isinstance(columns, list | tuple):
                continue
            names = [c for c in columns if isinstance(c, str)]
            if len(names) == len(columns):
                pairs.append((_first_step(transformer), names))
    elif getattr(first, "feature_names_in_", None) is not None:
        pairs.append((first, [str(c) for c in first.feature_names_in_]))
    for encoder, columns in pairs:
        categories = getattr(encoder, "categories_", None)
        if categories is None or len(categories) != len(columns):
            continue
        for column, values in zip(columns, categories, strict=True):
            values = to_jsonable(values)
            if values and all(isinstance(v, str) for v in values if v is not None):
                found[column] = [v for v in values if v is not None]
    return found


def signature_infer(
    estimator: Any, *, input_example: list[dict[str, Any]] | None = None
) -> Signature:
    """Ordered input columns with dtypes, task kind, classes and available outputs."""
    names = getattr(estimator, "feature_names_in_", None)
    n_features = getattr(estimator, "n_features_in_", None)
    named = names is not None
    if names is not None:
        columns = [str(name) for name in names]
    elif n_features is not None:
        columns = [f"f{i}" for i in range(int(n_features))]
    elif input_example:
        columns = list(input_example[0].keys())
    else:
        columns = []
    inputs = []
    try:
        categorical = categorical_inputs(estimator)
    except (AttributeError, TypeError, ValueError):
        categorical = {}  # an unusual estimator layout: fall back to the plain inference
    for column in columns:
        values = [row.get(column) for row in input_example or [] if isinstance(row, dict)]
        dtype = _dtype_of_values(values) if values else "float64"
        if column in categorical:
            inputs.append(
                Column(
                    name=column,
                    dtype="string" if not values else dtype,
                    categories=tuple(categorical[column]),
                )
            )
        else:
            inputs.append(Column(name=column, dtype=dtype))

    task = _task_of(estimator)
    classes = getattr(estimator, "classes_", None)
    has_proba = hasattr(estimator, "predict_proba")
    predict_dtype: Dtype = "float64"
    if classes is not None:
        predict_dtype = _dtype_of_values(to_jsonable(classes))
    elif task in ("clustering", "anomaly_detection"):
        predict_dtype = "int64"
    outputs = [Output(name="predict", dtype=predict_dtype)]
    if has_proba:
        width = len(classes) if classes is not None else -1
        outputs.append(Output(name="predict_proba", dtype="float64", shape=(-1, width)))
    return Signature(
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        task=task,
        classes=tuple(to_jsonable(classes)) if classes is not None else None,
        n_features=int(n_features) if n_features is not None else len(columns),
        has_predict_proba=has_proba,
        named_columns=named,
        estimator=_describe(estimator),
    )
