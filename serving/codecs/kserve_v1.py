"""KServe's V1 protocol (`/v1/models/<name>:predict`, the KServe SDK's default `RESTConfig()`):
`{"instances": [...]}` in, `{"predictions": [...]}` out; errors are `{"error": ...}`, as KServe's
model server answers them.

An instance is a row: a list of values in the signature's column order, or an object by column
name (every instance of a request the same kind).
"""

from typing import Any

from registry.types import Signature
from serving.codecs.columns import (
    DecodedRequest,
    InputError,
    PredictionResult,
    check_row_count,
    records_to_columns,
    rows_to_columns,
)


def request(data: Any, signature: Signature) -> DecodedRequest:
    """`{"instances": [[v, ...], ...]}` or `{"instances": [{column: v}, ...]}` (`inputs` is
    accepted for `instances`, as KServe's server does)."""
    if not isinstance(data, dict):
        raise InputError("The body must be a JSON object with 'instances'.")
    field = "instances" if "instances" in data or "inputs" not in data else "inputs"
    instances = data.get(field)
    if not isinstance(instances, list):
        raise InputError(f"'{field}' must be an array of instances.", field=field)
    check_row_count(len(instances), field=field)
    if isinstance(instances[0], dict):
        columns, n_rows = records_to_columns(instances, field=field)
        return DecodedRequest(columns=columns, n_rows=n_rows, records=instances)
    columns = rows_to_columns(instances, signature.column_names, field=field)
    return DecodedRequest(columns=columns, n_rows=len(instances))


def response(result: PredictionResult) -> dict[str, Any]:
    return {"predictions": result.predictions}


def model_ready(*, model: str, ready: bool) -> dict[str, Any]:
    return {"name": model, "ready": ready}
