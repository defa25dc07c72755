"""The MLflow scoring protocol (`/mlflow/models/<name>/invocations`): MLflow's JSON formats, CSV
or Parquet in, `{"predictions": …}` out; errors are `{"error_code", "message", "field"?, "row"?}`.

It answers what MLflow's own scoring server (`mlflow models serve`, MLFLOW_VERSION) answers for the
same model and body (tests/serving/test_mlflow_parity.py runs both): columns the model does not
take are ignored (an `id`, the unnamed index column `df.to_csv()` writes), a missing column is
INVALID_PARAMETER_VALUE, other bad input BAD_REQUEST (INVALID_PARAMETER_VALUE for a Parquet column
of the wrong type), as MLflow's schema enforcement, its parsers and its model calls answer.
"""

import csv
import io
from collections.abc import Collection, Sequence
from http import HTTPStatus
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings

from mlplatform.errors import ApplicationError
from registry.types import Signature
from serving.codecs.columns import (
    OUTPUTS,
    DecodedRequest,
    InputError,
    PredictionResult,
    check_row_count,
    column_array,
    dict_columns,
    records_to_columns,
    rows_to_columns,
)

# The MLflow release whose scoring server this protocol was checked against: `GET …/version`
# answers it, as MLflow's `/version` answers its own (the parity test compares the two).
MLFLOW_VERSION = "3.17.2"

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = (JSON, CSV, PARQUET)

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
    # Other top-level keys are ignored, as MLflow's scoring server ignores them.
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
        if "data" not in value or not set(value) <= {"columns", "data", "index"}:
            raise InputError(
                "'dataframe_split' takes 'data' and optionally 'columns' and 'index' "
                f"(got {', '.join(sorted(value)) or 'none'}).",
                field=key,
            )
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
        if name not in dtypes:  # an id, an index or an entity key: typed as pandas would
            parsed[name] = _csv_inferred(values)
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


def _csv_inferred(values: list[str]) -> list[Any]:
    """A CSV column the model does not take, typed as `pd.read_csv` types it: integers, else
    numbers, else the text as sent (an empty cell is None)."""
    for parse in (int, float):
        try:
            return [parse(cell) if cell.strip() else None for cell in values]
        except ValueError:
            continue
    return [cell if cell else None for cell in values]


def _invalid_parameter(error: InputError) -> InputError:
    """The error with MLflow's code for what its schema enforcement refuses."""
    error.extra["error_code"] = "INVALID_PARAMETER_VALUE"
    return error


def _arrow_column(name: str, column: pa.ChunkedArray, dtype: str) -> np.ndarray:
    """One Parquet column the model reads → a validated array; exotic types are refused."""
    kind = column.type
    if pa.types.is_dictionary(kind) and (
        pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type)
    ):
        column = column.cast(kind.value_type)  # strings read dictionary-encoded (see below)
        kind = column.type
    plain = (
        pa.types.is_null(kind)  # every value missing: reported as such below
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
    )
    if not plain:  # MLflow's schema enforcement refuses these as it refuses other wrong types
        raise _invalid_parameter(
            InputError(
                f"Column '{name}': Parquet type {str(kind)[:60]} is not supported; send numbers, "
                "booleans or strings.",
                field=name,
            )
        )
    if column.null_count:  # MLflow lets them through to the model, which refuses them
        row = int(np.flatnonzero(column.is_null().to_numpy())[0])
        raise InputError(
            f"Column '{name}', row {row}: expected a value, got a missing value (null).",
            field=name,
            row=row,
        )
    array = column.to_numpy()
    if pa.types.is_boolean(kind) and dtype != "bool":
        expected = "strings" if dtype == "string" else "numbers"
        raise _invalid_parameter(
            InputError(f"Column '{name}': expected {expected}, got booleans.", field=name)
        )
    try:
        return column_array(name, array, dtype)
    except InputError as exc:
        raise _invalid_parameter(exc) from None


def _parquet_too_large(cap: int) -> ApplicationError:
    return ApplicationError(
        f"The decoded Parquet columns exceed {cap} bytes (MLPLATFORM_MAX_BODY_BYTES); send "
        "fewer rows per request or use a batch job.",
        status_code=HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    )


def _decoded_size(table: pa.Table) -> int:
    """Bytes the columns take once decoded: 8 a value, plus the text of every string."""
    size = 8 * table.num_rows * table.num_columns
    for column in table.columns:
        if pa.types.is_dictionary(column.type):
            for chunk in column.chunks:
                lengths = pc.binary_length(chunk.dictionary).take(chunk.indices)
                size += pc.sum(lengths).as_py() or 0
    return size


def parquet_request(body: bytes, signature: Signature, *, keep: Collection[str]) -> DecodedRequest:
    """`application/vnd.apache.parquet` (`df.to_parquet()`): reads only the model's columns and
    the `keep` ones (entity keys), so other columns and a stored index are ignored unread. The
    declared size of its pages, its rows and the decoded size of the columns read are held to
    the caps of every body. A body pyarrow cannot read is a 400, never a 5xx."""
    cap = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    try:
        parquet = pq.ParquetFile(pa.BufferReader(body))
        metadata = parquet.metadata
        schema = parquet.schema_arrow
        # Pages are inflated to their declared size: bound it before reading anything, as a
        # compressed body is bounded once inflated.
        paged = sum(
            group.column(position).total_uncompressed_size
            for group in (metadata.row_group(i) for i in range(metadata.num_row_groups))
            for position in range(group.num_columns)
        )
    except (pa.ArrowException, OSError, ValueError, IndexError) as exc:
        raise InputError(f"The body is not a Parquet file: {str(exc)[:200]}") from None
    if paged > cap:
        raise _parquet_too_large(cap)
    check_row_count(metadata.num_rows, field="parquet")
    names = schema.names
    wanted = [name for name in (*signature.column_names, *keep) if name in names]
    for name in wanted:
        if names.count(name) > 1:
            raise InputError(f"Column '{name}' appears more than once.", field=name)
    # Strings stay dictionary-encoded until their decoded size is known to fit (a short
    # dictionary-encoded column can stand for gigabytes of repeated text).
    texts = [
        name
        for name in wanted
        if pa.types.is_string(schema.field(name).type)
        or pa.types.is_large_string(schema.field(name).type)
    ]
    try:
        reader = pq.ParquetFile(pa.BufferReader(body), read_dictionary=texts)
        table = reader.read(columns=wanted, use_pandas_metadata=False)
    except (pa.ArrowException, OSError, ValueError, IndexError) as exc:
        raise InputError(f"The Parquet body cannot be read: {str(exc)[:200]}") from None
    if _decoded_size(table) > cap:
        raise _parquet_too_large(cap)
    dtypes = signature.dtypes
    columns: dict[str, Any] = {}
    for name in wanted:
        if name in dtypes:
            columns[name] = _arrow_column(name, table.column(name), dtypes[name])
        else:  # an entity key: the feature store reads plain values
            columns[name] = table.column(name).to_pylist()
    return DecodedRequest(columns=columns, n_rows=table.num_rows, outputs=["predict"])


def columns_select(
    decoded: DecodedRequest, signature: Signature, *, keep: Collection[str] | None
) -> DecodedRequest:
    """The request with only the model's columns (and the `keep` ones: entity keys), as
    MLflow's schema enforcement ignores any other. `keep=None` (no feature service, so nothing
    can fill a gap): a missing column is INVALID_PARAMETER_VALUE, MLflow's code for it."""
    names = signature.column_names
    if keep is None:
        for name in names:
            if name not in decoded.columns:
                raise _invalid_parameter(InputError(f"Missing column '{name}'.", field=name))
    allowed = set(names).union(keep or ())
    if decoded.columns.keys() <= allowed:
        return decoded
    columns = {name: values for name, values in decoded.columns.items() if name in allowed}
    return DecodedRequest(
        columns=columns,
        n_rows=decoded.n_rows,
        outputs=decoded.outputs,
        request_id=decoded.request_id,
    )


def content_type_parse(header: str) -> str:
    """The media type of a request's Content-Type, refused (415) as MLflow refuses it: a type
    other than JSON, CSV or Parquet, a charset other than UTF-8, or any other parameter."""
    media, *parameters = (part.strip() for part in header.split(";"))
    media = media.lower()
    if media not in CONTENT_TYPES:
        raise ApplicationError(
            f"Content type {media or '(none)'!r} is not supported: send "
            f"{', '.join(CONTENT_TYPES)}.",
            status_code=HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        )
    for parameter in filter(None, parameters):
        key, _, value = parameter.partition("=")
        if key.strip().lower() != "charset":
            raise ApplicationError(
                f"Content type parameter {key.strip()[:40]!r} is not supported.",
                status_code=HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            )
        if value.strip().strip('"').lower() != "utf-8":
            raise ApplicationError(
                "Only UTF-8 bodies are supported.", status_code=HTTPStatus.UNSUPPORTED_MEDIA_TYPE
            )
    return media


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
        "error_code": data.get("error_code") or _ERROR_CODES.get(status_code, "INTERNAL_ERROR"),
        "message": str(data.get("detail", body)),
        **extra,
    }
