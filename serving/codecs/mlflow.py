"""The MLflow scoring protocol (`/mlflow/models/<name>/invocations`): MLflow's JSON formats or
CSV in, `{"predictions": …}` out; errors are `{"error_code", "message", "field"?, "row"?}`."""

import csv
import io
from collections.abc import Sequence
from typing import Any

from registry.types import Signature
from serving.codecs.columns import (
    OUTPUTS,
    DecodedRequest,
    InputError,
    PredictionResult,
    check_row_count,
    dict_columns,
    records_to_columns,
    rows_to_columns,
)

_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "ENDPOINT_NOT_FOUND",  # MLflow's code for a route it does not serve
    409: "INVALID_STATE",
    413: "REQUEST_LIMIT_EXCEEDED",
    415: "BAD_REQUEST",
    503: "TEMPORARILY_UNAVAILABLE",
}


def _list_payload(value: Any, names: Sequence[str], *, field: str) -> tuple[dict, int]:
    """MLflow `instances` / `inputs`: records, row-major lists, or (inputs only) columns."""
    if isinstance(value, dict):
        return dict_columns(value, field=field)
    if not isinstance(value, list):
        raise InputError(f"'{field}' must be an array or an object.", field=field)
    check_row_count(len(value), field=field)
    if isinstance(value[0], dict):
        return records_to_columns(value, field=field)
    if len(names) == 1 and not isinstance(value[0], list):
        # A bare list for a one-column model: one value per row.
        return {names[0]: value}, len(value)
    return rows_to_columns(value, names, field=field), len(value)


def json_request(data: Any, signature: Signature) -> DecodedRequest:
    """MLflow scoring JSON: exactly one of dataframe_split / dataframe_records / instances /
    inputs, plus optional `params` (`{"predict_method": "predict" | "predict_proba"}`)."""
    if not isinstance(data, dict):
        raise InputError("The body must be a JSON object.")
    formats = ("dataframe_split", "dataframe_records", "instances", "inputs")
    present = [key for key in formats if key in data]
    if len(present) != 1:
        raise InputError(
            f"Send exactly one of {', '.join(formats)} (got {', '.join(present) or 'none'}).",
            field="dataframe_split" if not present else present[1],
        )
    unknown = sorted(set(data) - {*formats, "params"})
    if unknown:
        raise InputError(f"Unknown field '{unknown[0]}'.", field=unknown[0])
    outputs = ["predict"]
    params = data.get("params")
    if params is not None:
        if not isinstance(params, dict):
            raise InputError("'params' must be an object.", field="params")
        method = params.get("predict_method", "predict")
        if method not in OUTPUTS:
            raise InputError(
                f"params.predict_method must be one of {', '.join(OUTPUTS)}.",
                field="params.predict_method",
            )
        outputs = [method]
    names = signature.column_names
    key = present[0]
    value = data[key]
    if key == "dataframe_split":
        if not isinstance(value, dict):
            raise InputError("'dataframe_split' must be an object.", field=key)
        cols = value.get("columns", names)
        rows = value.get("data")
        if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
            raise InputError("'dataframe_split.columns' must be an array of names.", field=key)
        if len(set(cols)) != len(cols):
            raise InputError("'dataframe_split.columns' repeats a name.", field=key)
        if not isinstance(rows, list):
            raise InputError("'dataframe_split.data' must be an array of rows.", field=key)
        check_row_count(len(rows), field=key)
        columns = rows_to_columns(rows, cols, field="dataframe_split.data")
        return DecodedRequest(columns=columns, n_rows=len(rows), outputs=outputs)
    if key == "dataframe_records":
        columns, n_rows = records_to_columns(value, field=key)
    else:
        columns, n_rows = _list_payload(value, names, field=key)
    return DecodedRequest(columns=columns, n_rows=n_rows, outputs=outputs)


def csv_request(body: bytes, signature: Signature) -> DecodedRequest:
    """`text/csv` with a header row; cells are parsed as numbers unless the column is a string."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("The CSV body is not UTF-8.") from None
    reader = csv.reader(io.StringIO(text))
    try:
        rows = [row for row in reader if row]
    except csv.Error as exc:
        raise InputError(f"Malformed CSV: {exc}.") from None
    if not rows:
        raise InputError("The CSV body is empty: send a header row and data rows.")
    header, data = rows[0], rows[1:]
    check_row_count(len(data), field="csv")
    dtypes = signature.dtypes
    columns = rows_to_columns(data, header, field="csv")
    parsed: dict[str, list[Any]] = {}
    for name, values in columns.items():
        if dtypes.get(name) == "string":
            parsed[name] = values
            continue
        out: list[Any] = []
        for position, cell in enumerate(values):
            try:
                number = float(cell) if cell.strip() else None
            except ValueError:
                raise InputError(
                    f"Column '{name}', row {position}: {cell[:40]!r} is not a number.",
                    field=name,
                    row=position,
                ) from None
            if dtypes.get(name) == "bool" and number is not None:
                number = bool(number)
            out.append(number)
        parsed[name] = out
    return DecodedRequest(columns=parsed, n_rows=len(data), outputs=["predict"])


def response(*, decoded: DecodedRequest, result: PredictionResult) -> dict[str, Any]:
    """`{"predictions": …}`: the probabilities when `predict_proba` was the method asked for."""
    if decoded.outputs == ["predict_proba"]:
        return {"predictions": result.probabilities}
    return {"predictions": result.predictions}


def error_body(status_code: int, body: Any) -> dict[str, Any]:
    """MLflow's error shape, from the platform's error body (`{"detail", "field"?, "row"?}`)."""
    data = body if isinstance(body, dict) else {}
    extra = {k: v for k, v in data.items() if k in ("field", "row")}
    return {
        "error_code": _ERROR_CODES.get(status_code, "INTERNAL_ERROR"),
        "message": str(data.get("detail", body)),
        **extra,
    }
