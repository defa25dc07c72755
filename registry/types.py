"""A model version's signature as a typed value: what the model takes and returns.

The database column and every API payload hold its JSON form, exactly as it always was:

    {"inputs": [{"name", "dtype", "categories"?}], "outputs": [{"name", "dtype", "shape"?}],
     "task", "classes", "n_features", "has_predict_proba", "named_columns", "estimator",
     "trusted_types"?}

Code reads `Signature` attributes; `Signature.from_json` (which checks the shape) and
`Signature.to_json` are the only converters, called by `registry.models.SignatureField` when a
version is loaded or saved. A version not validated yet has the empty signature (`{}`).

This module imports only the standard library: web processes read signatures. Inferring one
from a fitted estimator needs scikit-learn and lives in `registry/signature.py`, which runs in
the confined validator (and in tests).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal, get_args

# dtype names clients see; everything numeric is decoded to float64 unless declared otherwise.
Dtype = Literal["float64", "int64", "bool", "string"]
DTYPES: tuple[Dtype, ...] = get_args(Dtype)
Task = Literal["classification", "regression", "anomaly_detection", "clustering", "other"]
TASKS: tuple[Task, ...] = get_args(Task)
# A class label as JSON holds it (scikit-learn's `classes_`, made plain).
Label = str | int | float | bool


class SignatureError(ValueError):
    """A signature whose JSON does not have the shape above."""


def _fail(what: str, value: Any) -> SignatureError:
    return SignatureError(f"signature {what}: {value!r:.80}")


def _keys(data: Any, *, what: str, required: set[str], optional: set[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _fail(f"{what} must be an object", data)
    missing = required - data.keys()
    unknown = data.keys() - required - optional
    if missing or unknown:
        raise _fail(f"{what} has missing {sorted(missing)} / unknown {sorted(unknown)} keys", data)
    return data


def _dtype(value: Any, *, what: str) -> Dtype:
    if value not in DTYPES:
        raise _fail(f"{what} dtype is not one of {', '.join(DTYPES)}", value)
    return value  # type: ignore[no-any-return]  # checked against the Literal's values


def _list(value: Any, *, what: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _fail(f"{what} must be an array", value)
    return list(value)


@dataclass(frozen=True)
class Column:
    """One input column, in the order the estimator takes them."""

    name: str
    dtype: Dtype = "float64"
    # The text categories an encoder learned for this column, when it has any.
    categories: tuple[Label, ...] | None = None

    @classmethod
    def from_json(cls, data: Any) -> "Column":
        data = _keys(data, what="input", required={"name"}, optional={"dtype", "categories"})
        if not isinstance(data["name"], str):
            raise _fail("input name must be a string", data["name"])
        categories = data.get("categories")
        return cls(
            name=data["name"],
            dtype=_dtype(data.get("dtype", "float64"), what=f"input {data['name']!r}"),
            categories=None if categories is None else tuple(_list(categories, what="categories")),
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.categories is not None:
            body["categories"] = list(self.categories)
        return body


@dataclass(frozen=True)
class Output:
    """One output: `predict`, or `predict_proba` with its shape `[-1, n_classes]`."""

    name: str
    dtype: Dtype = "float64"
    shape: tuple[int, ...] | None = None

    @classmethod
    def from_json(cls, data: Any) -> "Output":
        data = _keys(data, what="output", required={"name"}, optional={"dtype", "shape"})
        if not isinstance(data["name"], str):
            raise _fail("output name must be a string", data["name"])
        shape = data.get("shape")
        if shape is not None and not all(isinstance(s, int) for s in _list(shape, what="shape")):
            raise _fail("output shape must be an array of sizes", shape)
        return cls(
            name=data["name"],
            dtype=_dtype(data.get("dtype", "float64"), what=f"output {data['name']!r}"),
            shape=None if shape is None else tuple(shape),
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.shape is not None:
            body["shape"] = list(self.shape)
        return body


_KEYS = {
    "inputs",
    "outputs",
    "task",
    "classes",
    "n_features",
    "has_predict_proba",
    "named_columns",
    "estimator",
}


@dataclass(frozen=True)
class Signature:
    """What a version takes (`inputs`) and returns (`outputs`), and how it was fitted."""

    inputs: tuple[Column, ...] = ()
    outputs: tuple[Output, ...] = ()
    task: Task | None = None
    classes: tuple[Label, ...] | None = None  # None: not a classifier
    n_features: int = 0
    has_predict_proba: bool = False
    # Fitted on a DataFrame: the estimator is given one, with these column names.
    named_columns: bool = False
    estimator: str = ""  # its class, or a pipeline's steps ("StandardScaler → LogisticRegression")
    # The exact types the artifact's scan found and the loader trusts (None: validated before
    # the scan recorded them).
    trusted_types: tuple[str, ...] | None = None

    @property
    def empty(self) -> bool:
        """No signature yet: the version has not been validated."""
        return self == _EMPTY

    # Read on every request: worked out once per signature (a cached value is not a field, so
    # equality and the stored JSON are unchanged). Callers must not modify them.
    @cached_property
    def column_names(self) -> list[str]:
        return [column.name for column in self.inputs]

    @cached_property
    def dtypes(self) -> dict[str, Dtype]:
        """Input column name → dtype, in signature order."""
        return {column.name: column.dtype for column in self.inputs}

    @property
    def predict_dtype(self) -> Dtype:
        """The dtype of `predict`'s output (float64 when the signature names none)."""
        return self.outputs[0].dtype if self.outputs else "float64"

    def with_trusted_types(self, types: Iterable[str]) -> "Signature":
        return replace(self, trusted_types=tuple(types))

    @classmethod
    def from_json(cls, data: Any) -> "Signature":
        """The stored JSON → a Signature. Raises SignatureError if its shape is not the one
        documented above (keys other than `inputs` may be absent; they take their defaults)."""
        if isinstance(data, Mapping) and not data:
            return _EMPTY
        data = _keys(data, what="", required=set(), optional=_KEYS | {"trusted_types"})
        inputs = tuple(Column.from_json(c) for c in _list(data.get("inputs", []), what="inputs"))
        outputs = tuple(Output.from_json(o) for o in _list(data.get("outputs", []), what="outputs"))
        task = data.get("task")
        if task is not None and task not in TASKS:
            raise _fail(f"task is not one of {', '.join(TASKS)}", task)
        classes = data.get("classes")
        trusted = data.get("trusted_types")
        n_features = data.get("n_features", len(inputs))
        if not isinstance(n_features, int) or isinstance(n_features, bool):
            raise _fail("n_features must be an integer", n_features)
        flags = {key: data.get(key, False) for key in ("has_predict_proba", "named_columns")}
        for key, value in flags.items():
            if not isinstance(value, bool):
                raise _fail(f"{key} must be a boolean", value)
        estimator = data.get("estimator", "")
        if not isinstance(estimator, str):
            raise _fail("estimator must be a string", estimator)
        return cls(
            inputs=inputs,
            outputs=outputs,
            task=task,
            classes=None if classes is None else tuple(_list(classes, what="classes")),
            n_features=n_features,
            has_predict_proba=flags["has_predict_proba"],
            named_columns=flags["named_columns"],
            estimator=estimator,
            trusted_types=None if trusted is None else tuple(_list(trusted, what="trusted_types")),
        )

    def to_json(self) -> dict[str, Any]:
        """The stored and served JSON form (keys in the order inference always wrote them)."""
        if self.empty:
            return {}
        body: dict[str, Any] = {
            "inputs": [column.to_json() for column in self.inputs],
            "outputs": [output.to_json() for output in self.outputs],
            "task": self.task,
            "classes": None if self.classes is None else list(self.classes),
            "n_features": self.n_features,
            "has_predict_proba": self.has_predict_proba,
            "named_columns": self.named_columns,
            "estimator": self.estimator,
        }
        if self.trusted_types is not None:
            body["trusted_types"] = list(self.trusted_types)
        return body


_EMPTY = Signature()
