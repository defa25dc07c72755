"""The native protocol (`/api/v1/models/<name>/predict`): records or columns in, predictions,
probabilities and classes out; errors are the platform's `{"detail", "field", "row"}`."""

from typing import Any

from mlplatform.errors import ApplicationError
from serving.codecs.columns import (
    DecodedRequest,
    InputError,
    PredictionResult,
    dict_columns,
    outputs_parse,
    records_to_columns,
)


def request(data: Any) -> DecodedRequest:
    """`{"instances": [{…}]}` or `{"inputs": {col: […]}}`, optional `"return"`."""
    if not isinstance(data, dict):
        raise InputError("The body must be a JSON object with 'instances' or 'inputs'.")
    unknown = sorted(set(data) - {"instances", "inputs", "return"})
    if unknown:
        raise InputError(
            f"Unknown field '{unknown[0]}': send 'instances' or 'inputs', and optionally 'return'.",
            field=unknown[0],
        )
    if ("instances" in data) == ("inputs" in data):
        raise InputError(
            "Send exactly one of 'instances' (records) or 'inputs' (columns).", field="instances"
        )
    outputs = outputs_parse(data.get("return"), field="return")
    if "instances" in data:
        records = data["instances"]
        columns, n_rows = records_to_columns(records, field="instances")
        return DecodedRequest(columns=columns, n_rows=n_rows, outputs=outputs, records=records)
    columns, n_rows = dict_columns(data["inputs"], field="inputs")
    return DecodedRequest(columns=columns, n_rows=n_rows, outputs=outputs)


def response(*, model: str, version: int, result: PredictionResult) -> dict[str, Any]:
    """`{"model", "version", "predictions"?, "probabilities"?, "classes"?}`."""
    body: dict[str, Any] = {"model": model, "version": version}
    if result.predictions is not None:
        body["predictions"] = result.predictions
    if result.probabilities is not None:
        body["probabilities"] = result.probabilities
        body["classes"] = result.classes
    return body


def error_body(error: ApplicationError) -> dict[str, Any]:
    """`{"detail", …}` plus the error's extra keys (`field` and `row` for an InputError): what
    the API's exception handler answers for every application error."""
    return {"detail": error.message, **error.extra}
