"""What every protocol shares: decoded requests, column checks, columns → the estimator's input,
and predictions → JSON-safe lists (the protocol bodies are in the sibling modules).

JSON bodies are decoded straight into a float64 matrix in the signature's column order; a pandas
DataFrame is built only when a column holds strings (graphs and runners take arrays; a runner
names the columns itself for a model fitted on a DataFrame). Every check raises `InputError`,
whose JSON body names the offending field and row. Row numbers are 0-based positions in the
request (or `row_offset` + position for frames).
"""

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings

from mlplatform.errors import ApplicationError
from registry.types import Signature

OUTPUTS = ("predict", "predict_proba")
Matrix = np.ndarray | pd.DataFrame

NUMERIC = frozenset({int, float})
_NUMERIC_DTYPES = frozenset({"float64", "int64"})
_BOOLISH = frozenset({bool, int})
STRING = frozenset({str})
_TYPE_NAMES = {str: "a string", bool: "a boolean", list: "an array", dict: "an object"}


class InputError(ApplicationError):
    """Bad prediction input; the response body is `{"detail", "field", "row"}`."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        row: int | None = None,
        status_code: int | None = None,
    ):
        super().__init__(message, extra={"field": field, "row": row}, status_code=status_code)
        self.field = field
        self.row = row


@dataclass
class DecodedRequest:
    """A prediction request decoded from its protocol: columns of Python values plus the outputs
    asked for. (Not a batch scoring job: those are `batch.models.BatchJob`.)"""

    columns: dict[str, Any]
    n_rows: int
    outputs: list[str] = field(default_factory=lambda: ["predict"])
    # Columns the client may send that are not model inputs (entity keys of a feature service).
    request_id: str | None = None
    # The same values as the request sent them, when it sent records (`[{column: value}, …]`):
    # an all-numeric request with exactly the model's columns becomes a matrix from these in
    # one conversion. None once `columns` is changed (filled from the feature store, say).
    records: list[dict[str, Any]] | None = None


@dataclass
class PredictionResult:
    """What a predict returned, as JSON-safe lists: every protocol's response is built from it."""

    predictions: list[Any] | None
    probabilities: list[list[Any]] | None
    classes: list[Any] | None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def check_row_count(n_rows: int, *, field: str) -> None:
    if n_rows == 0:
        raise InputError("The input is empty: send at least one row.", field=field)
    limit = int(settings.MLPLATFORM_MAX_BATCH_ROWS)
    if n_rows > limit:
        raise InputError(
            f"{n_rows} rows exceed the limit of {limit} rows per request "
            "(MLPLATFORM_MAX_BATCH_ROWS); use a batch job for more.",
            field=field,
        )


# --- one column of values → a validated array ----------------------------------------------


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def bad_value(name: str, values: Sequence[Any], allowed: frozenset, expected: str, offset: int):
    for position, value in enumerate(values):
        if type(value) not in allowed:
            if value is None:
                problem = "a missing value (null)"
            elif isinstance(value, str) and expected == "a number" and _numeric(value):
                problem = f"the string {value[:40]!r} (numeric strings are not accepted)"
            elif isinstance(value, str):
                problem = f"the string {value[:40]!r}"
            else:
                problem = _type_name(value)
            return InputError(
                f"Column '{name}', row {offset + position}: expected {expected}, got {problem}.",
                field=name,
                row=offset + position,
            )
    return None


def _non_finite(name: str, array: np.ndarray, offset: int) -> InputError:
    position = int(np.flatnonzero(~np.isfinite(array))[0])
    return InputError(
        f"Column '{name}', row {offset + position}: NaN and Infinity are not accepted.",
        field=name,
        row=offset + position,
    )


def column_array(name: str, values: Any, dtype: str, *, offset: int = 0) -> np.ndarray:
    """Validate one column (a list of JSON values or a 1-D array) and return it as an array."""
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    if isinstance(values, np.ndarray):
        return _ndarray_column(name, values, dtype, offset)
    if dtype == "string":
        error = bad_value(name, values, STRING, "a string", offset)
        if error is not None:
            raise error
        return np.asarray(values, dtype=object)
    allowed, expected = (_BOOLISH, "a boolean") if dtype == "bool" else (NUMERIC, "a number")
    if not set(map(type, values)) <= allowed:
        error = bad_value(name, values, allowed, expected, offset)
        if error is not None:
            raise error
    try:
        array = np.asarray(values, dtype=np.float64 if dtype != "int64" else None)
    except OverflowError:
        position = next(
            (i for i, v in enumerate(values) if isinstance(v, int) and abs(v) > 2**1023), 0
        )
        raise InputError(
            f"Column '{name}', row {offset + position}: number out of range.",
            field=name,
            row=offset + position,
        ) from None
    if array.dtype.kind not in "iub":
        if array.dtype.kind != "f":
            array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise _non_finite(name, array, offset)
    return array


def _ndarray_column(name: str, array: np.ndarray, dtype: str, offset: int) -> np.ndarray:
    kind = array.dtype.kind
    if dtype == "string":
        if kind in "OUS":
            values = array.tolist()
            error = bad_value(name, values, STRING, "a string", offset)
            if error is not None:
                raise error
            return array.astype(object)
        raise InputError(
            f"Column '{name}': expected strings, got {array.dtype} values.", field=name
        )
    if kind in "iub":
        return array
    if kind == "f":
        if not np.isfinite(array).all():
            raise _non_finite(name, array, offset)
        return array
    # object / string columns from CSV or Parquet: report the first value that is not a number.
    values = [v.item() if isinstance(v, np.generic) else v for v in array.tolist()]
    clean = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    allowed, expected = (_BOOLISH, "a boolean") if dtype == "bool" else (NUMERIC, "a number")
    error = bad_value(name, clean, allowed, expected, offset)
    if error is not None:
        raise error
    return column_array(name, clean, dtype, offset=offset)


# --- columns → what the estimator's predict takes -----------------------------------------


def columns_to_matrix(
    columns: dict[str, Any],
    signature: Signature,
    *,
    n_rows: int,
    allow_extra: Iterable[str] | bool = (),
    row_offset: int = 0,
    records: list[dict[str, Any]] | None = None,
) -> Matrix:
    """Validate named columns against the signature and assemble them in signature order.

    `allow_extra=True` ignores any column the model does not take; an iterable names the only
    extra columns allowed (e.g. entity keys). `records`, the same values as records with the
    same keys (`DecodedRequest.records`), lets an all-numeric request skip the per-column work.
    Raises InputError naming the column (and row).
    """
    dtypes = signature.dtypes
    names = list(dtypes)
    if columns.keys() != dtypes.keys():  # else exactly the model's columns, the usual request
        # An unknown column is checked first: it is usually a typo of the missing one.
        if allow_extra is not True:
            permitted = set(allow_extra) if allow_extra else set()
            for name in columns:
                if name not in dtypes and name not in permitted:
                    raise InputError(
                        f"Unknown column '{name}': this model takes {', '.join(names)}.",
                        field=name,
                    )
        for name in names:
            if name not in columns:
                raise InputError(f"Missing column '{name}'.", field=name)
    elif records is not None and len(records) == n_rows:
        fast = _numeric_records(records, names, dtypes)
        if fast is not None:
            return fast
    fast = _numeric_fast_path(columns, names, dtypes, n_rows)
    if fast is not None:
        return fast
    arrays = []
    for name in names:
        array = column_array(name, columns[name], dtypes[name], offset=row_offset)
        if len(array) != n_rows:
            raise InputError(
                f"Column '{name}' has {len(array)} values, expected {n_rows}.", field=name
            )
        arrays.append(array)
    if any(a.dtype == object for a in arrays):
        return pd.DataFrame(
            {name: array for name, array in zip(names, arrays, strict=True)}, copy=False
        )
    matrix = np.empty((n_rows, len(names)), dtype=np.float64)
    for position, array in enumerate(arrays):
        matrix[:, position] = array
    return matrix


def _numeric_fast_path(
    columns: dict[str, Any], names: list[str], dtypes: Mapping[str, str], n_rows: int
) -> np.ndarray | None:
    """All-numeric JSON columns in one pass: one type check over every value and one
    conversion, instead of one per column. None means "take the per-column path", which finds
    and names the offending value."""
    if any(dtypes[name] not in ("float64", "int64") for name in names):
        return None
    ordered = [columns[name] for name in names]
    if not all(type(values) is list and len(values) == n_rows for values in ordered):
        return None
    if not set(map(type, chain.from_iterable(ordered))) <= NUMERIC:
        return None
    try:
        matrix = np.array(ordered, dtype=np.float64).T
    except OverflowError:
        return None
    if not np.isfinite(matrix).all():
        return None
    return np.ascontiguousarray(matrix)


def _numeric_records(
    records: list[dict[str, Any]], names: list[str], dtypes: Mapping[str, str]
) -> np.ndarray | None:
    """All-numeric records with exactly the model's columns, straight into a row-major matrix:
    no transposition, one type check and one conversion (a third of the time of the column
    path for a one-row request). None means "take the column path", which names the fault."""
    if len(names) < 2 or not set(dtypes.values()) <= _NUMERIC_DTYPES:
        return None  # (one name: itemgetter would give the value itself, not a 1-tuple)
    values_of = itemgetter(*names)  # a record's values in signature order, as a tuple
    rows = [values_of(record) for record in records]
    if not set(map(type, chain.from_iterable(rows))) <= NUMERIC:
        return None
    try:
        matrix = np.array(rows, dtype=np.float64)
    except OverflowError:
        return None
    # A NaN or an infinity makes the sum one; so can finite values too large to add up, which
    # the column path then accepts. One ufunc call instead of a mask and its reduction.
    if not math.isfinite(np.add.reduce(matrix, axis=None)):
        return None
    return matrix


def frame_to_matrix(frame: pd.DataFrame, signature: Signature, *, row_offset: int = 0) -> Matrix:
    """A DataFrame (a batch chunk) → the estimator's input, in signature column order: a float64
    matrix, or a DataFrame with the signature's columns when the estimator was fitted on one
    (`named_columns`) or a column holds strings.

    Extra columns (ids carried by batch jobs) are ignored. Row numbers in errors are 0-based:
    `row_offset` + the row's position in `frame`. Raises InputError for a missing column, a
    value of the wrong type, a missing value, NaN or Infinity.
    """
    names = signature.column_names
    columns = {name: frame[name] for name in names if name in frame}
    missing = [name for name in names if name not in frame]
    if missing:
        raise InputError(f"Missing column '{missing[0]}'.", field=missing[0])
    return columns_to_matrix(
        columns, signature, n_rows=len(frame), allow_extra=True, row_offset=row_offset
    )


def rows_to_columns(
    rows: Any, names: Sequence[str], *, field: str, row_offset: int = 0
) -> dict[str, list[Any]]:
    """Row-major lists (`[[v, …], …]`) in a known column order → columns; checks raggedness."""
    if not isinstance(rows, list):
        raise InputError(f"'{field}' must be an array of rows.", field=field)
    width = len(names)
    for position, row in enumerate(rows):
        if not isinstance(row, list):
            raise InputError(
                f"'{field}' row {position} must be an array of {width} values.",
                field=field,
                row=position + row_offset,
            )
        if len(row) != width:
            raise InputError(
                f"'{field}' row {position} has {len(row)} values, expected {width} "
                f"({', '.join(names)}).",
                field=field,
                row=position + row_offset,
            )
    return {name: [row[j] for row in rows] for j, name in enumerate(names)}


def records_to_columns(records: Any, *, field: str) -> tuple[dict[str, list[Any]], int]:
    """`[{col: value}, …]` → columns; every record must have the same keys as the first."""
    if not isinstance(records, list):
        raise InputError(f"'{field}' must be an array of objects.", field=field)
    check_row_count(len(records), field=field)
    first = records[0]
    if not isinstance(first, dict):
        raise InputError(f"'{field}' row 0 must be an object.", field=field, row=0)
    keys = list(first)
    key_set = set(keys)
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(
                f"'{field}' row {position} must be an object.", field=field, row=position
            )
        if record.keys() != key_set:
            missing = sorted(key_set - record.keys())
            extra = sorted(record.keys() - key_set)
            name = missing[0] if missing else extra[0]
            what = "lacks" if missing else "has an extra"
            raise InputError(
                f"'{field}' row {position} {what} column '{name}' (rows must share their columns).",
                field=name,
                row=position,
            )
    if len(records) == 1:  # one row per request is the common case of real-time serving
        return {key: [value] for key, value in first.items()}, 1
    return {key: [record[key] for record in records] for key in keys}, len(records)


def dict_columns(inputs: Any, *, field: str) -> tuple[dict[str, list[Any]], int]:
    """`{col: [values…]}` → columns; all columns must be arrays of the same length."""
    if not isinstance(inputs, dict) or not inputs:
        raise InputError(f"'{field}' must be a non-empty object of columns.", field=field)
    n_rows = None
    for name, values in inputs.items():
        if not isinstance(values, list):
            raise InputError(f"Column '{name}' must be an array of values.", field=name)
        if n_rows is None:
            n_rows = len(values)
        elif len(values) != n_rows:
            raise InputError(
                f"Column '{name}' has {len(values)} values but the first column has {n_rows}: "
                "columns must have the same length.",
                field=name,
            )
    assert n_rows is not None
    check_row_count(n_rows, field=field)
    return dict(inputs), n_rows


def outputs_parse(value: Any, *, field: str) -> list[str]:
    """Requested outputs: a list (or one string) of `predict` / `predict_proba`."""
    if value is None:
        return ["predict"]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise InputError(f"'{field}' must be a non-empty array of {OUTPUTS}.", field=field)
    for item in value:
        if item not in OUTPUTS:
            raise InputError(
                f"'{field}' contains {item!r}; choose from {', '.join(OUTPUTS)}.", field=field
            )
    return list(dict.fromkeys(value))


# --- JSON bodies ---------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise InputError(f"{name} is not valid JSON: NaN and Infinity are not accepted.")


# One decoder for every request: `json.loads(..., parse_constant=...)` builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# One encoder for every response (non-default options make `json.dumps` build one per call).
_ENCODER = json.JSONEncoder(allow_nan=False)


def json_decode(body: bytes) -> Any:
    """A request body → JSON values; an empty or invalid body, NaN or Infinity is an InputError."""
    if not body:
        raise InputError("The body is empty: send a JSON object.")
    try:
        return _DECODER.decode(body.decode(json.detect_encoding(body)))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InputError(f"The body is not valid JSON: {exc}") from None


def json_encode(body: Any) -> bytes:
    """A response body → ASCII JSON bytes (`ensure_ascii` is on); NaN is refused, never sent."""
    return _ENCODER.encode(body).encode("ascii")


# --- results → JSON ----------------------------------------------------------------------


def jsonable_column(array: Any) -> list[Any]:
    """A prediction array → a JSON-safe list: NaN and ±Infinity become null."""
    array = np.asarray(array)
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            return list(np.where(finite, array.astype(object), None))
        return array.tolist()
    if array.dtype.kind == "O":
        return [
            None if isinstance(v, float) and not math.isfinite(v) else _plain(v)
            for v in array.tolist()
        ]
    return array.tolist()


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
