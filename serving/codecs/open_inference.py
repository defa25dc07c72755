"""The Open Inference Protocol v2 (`/v2/models/<name>/infer`, KServe and Triton clients): tensors
in and out, model metadata; errors are `{"error", "field"?, "row"?}`."""

import json
import math
from typing import Any

import numpy as np

from registry.types import Dtype, Signature
from serving.codecs import binary_tensors
from serving.codecs.columns import (
    NUMERIC,
    OUTPUTS,
    STRING,
    DecodedRequest,
    InputError,
    PredictionResult,
    bad_value,
    check_row_count,
    json_decode,
)

# Signature dtypes → v2 datatypes.
_DATATYPES: dict[Dtype, str] = {
    "string": "BYTES",
    "int64": "INT64",
    "bool": "BOOL",
    "float64": "FP64",
}

_TENSOR_TYPES = {
    "BOOL": frozenset({bool}),
    "BYTES": STRING,
    **{f"INT{n}": frozenset({int}) for n in (8, 16, 32, 64)},
    **{f"UINT{n}": frozenset({int}) for n in (8, 16, 32, 64)},
    **{f"FP{n}": NUMERIC for n in (16, 32, 64)},
}


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if data and isinstance(data[0], list):
        flat: list[Any] = []
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(reversed(item))
            else:
                flat.append(item)
        return flat
    return data


def _tensor(tensor: Any, position: int) -> tuple[str, list[int], list[Any] | np.ndarray]:
    field = f"inputs[{position}]"
    if not isinstance(tensor, dict):
        raise InputError(f"'{field}' must be a tensor object.", field=field)
    name = tensor.get("name")
    shape = tensor.get("shape")
    datatype = tensor.get("datatype")
    params = tensor.get("parameters") or {}
    data = tensor.get("data")
    if (
        isinstance(params, dict)
        and "binary_data_size" in params
        and not isinstance(data, np.ndarray)
    ):
        raise InputError(
            f"'{field}' has binary_data_size but the request has no "
            f"{binary_tensors.HEADER} header (binary tensor data needs it).",
            field=field,
        )
    if not isinstance(name, str):
        raise InputError(f"'{field}.name' must be a string.", field=field)
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise InputError(f"Tensor '{name}': 'shape' must be an array of sizes.", field=name)
    if not isinstance(datatype, str) or datatype not in _TENSOR_TYPES:
        raise InputError(
            f"Tensor '{name}': datatype {datatype!r} is not one of {', '.join(_TENSOR_TYPES)}.",
            field=name,
        )
    if "data" not in tensor:
        raise InputError(
            f"Tensor '{name}' has no 'data' (nor parameters.binary_data_size).", field=name
        )
    expected = math.prod(shape)
    if isinstance(data, np.ndarray) and len(data) == expected:
        return name, shape, data  # binary data, decoded for this datatype and shape already
    flat = _flatten(data)
    if len(flat) != expected:
        raise InputError(
            f"Tensor '{name}': shape {shape} needs {expected} values, got {len(flat)}.", field=name
        )
    allowed = _TENSOR_TYPES[datatype]
    if not set(map(type, flat)) <= allowed:
        error = bad_value(name, flat, allowed, f"{datatype} values", 0)
        if error is not None:
            raise InputError(
                f"Tensor '{name}' ({datatype}): {error.message.split(': ', 1)[1]}",
                field=name,
                row=error.row,
            )
    return name, shape, flat


def body_decode(body: bytes, header_length: str | None) -> Any:
    """An infer request body → its JSON, with the inputs sent as binary data attached as
    arrays (when the request has an `Inference-Header-Content-Length` header)."""
    if header_length is None:
        return json_decode(body)
    header, raw = binary_tensors.split(body, header_length)
    data = json_decode(header)
    binary_tensors.inputs_attach(data, raw)
    return data


def request(data: Any, signature: Signature) -> tuple[DecodedRequest, Any]:
    """An Open Inference v2 infer body → (the decoded request, its id to echo)."""
    if not isinstance(data, dict):
        raise InputError("The body must be a JSON object with 'inputs'.")
    request_id = data.get("id")
    tensors = data.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise InputError("'inputs' must be a non-empty array of tensors.", field="inputs")
    # No outputs named: all of them, as the protocol says.
    outputs = ["predict", "predict_proba"] if signature.has_predict_proba else ["predict"]
    requested = data.get("outputs")
    if requested is not None:
        if not isinstance(requested, list) or not requested:
            raise InputError("'outputs' must be a non-empty array.", field="outputs")
        names = []
        for position, item in enumerate(requested):
            if not isinstance(item, dict) or item.get("name") not in OUTPUTS:
                named = item.get("name") if isinstance(item, dict) else None
                what = f"names {str(named)[:40]!r}, no output of this model" if named else ""
                raise InputError(
                    f"outputs[{position}] {what or 'has no name'}: name one of "
                    f"{', '.join(OUTPUTS)}.",
                    field=f"outputs[{position}]",
                )
            names.append(item["name"])
        outputs = list(dict.fromkeys(names))
    columns_in = signature.column_names
    decoded = [_tensor(tensor, position) for position, tensor in enumerate(tensors)]
    if len(decoded) == 1 and len(decoded[0][1]) == 2 and decoded[0][0] not in columns_in:
        name, shape, flat = decoded[0]
        rows, width = shape
        if width != len(columns_in):
            raise InputError(
                f"Tensor '{name}' has {width} columns, the model takes {len(columns_in)} "
                f"({', '.join(columns_in)}).",
                field=name,
            )
        check_row_count(rows, field=name)
        columns = {column: flat[j::width] for j, column in enumerate(columns_in)}
        return DecodedRequest(columns=columns, n_rows=rows, outputs=outputs), request_id
    columns_by_name: dict[str, list[Any] | np.ndarray] = {}
    n_rows = None
    for name, shape, flat in decoded:
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise InputError(
                f"Tensor '{name}': a per-column tensor must have shape [rows] or [rows, 1].",
                field=name,
            )
        if name in columns_by_name:
            raise InputError(f"Tensor '{name}' is sent twice.", field=name)
        if n_rows is None:
            n_rows = shape[0]
        elif shape[0] != n_rows:
            raise InputError(
                f"Tensor '{name}' has {shape[0]} rows, the first tensor has {n_rows}.", field=name
            )
        columns_by_name[name] = flat
    assert n_rows is not None
    check_row_count(n_rows, field="inputs")
    return DecodedRequest(columns=columns_by_name, n_rows=n_rows, outputs=outputs), request_id


def binary_outputs(data: dict[str, Any], outputs: list[str]) -> frozenset[str]:
    """The outputs to answer as binary data: each output's `parameters.binary_data`, else the
    request's `parameters.binary_data_output` (tritonclient sets it when it names no output)."""
    params = data.get("parameters")
    default = isinstance(params, dict) and params.get("binary_data_output") is True
    flags = {name: default for name in outputs}
    for item in data.get("outputs") or ():
        item_params = item.get("parameters")
        if isinstance(item_params, dict) and "binary_data" in item_params:
            flags[item["name"]] = item_params["binary_data"] is True
    return frozenset(name for name, binary in flags.items() if binary)


def response(
    *,
    model: str,
    version: int,
    signature: Signature,
    decoded: DecodedRequest,
    infer_id: Any,
    result: PredictionResult,
) -> dict[str, Any]:
    """The infer response: one output tensor per requested output, the request's id echoed."""
    outputs: list[dict[str, Any]] = []
    if result.predictions is not None:
        outputs.append(
            {
                "name": "predict",
                "datatype": _DATATYPES[signature.predict_dtype],
                "shape": [decoded.n_rows],
                "data": result.predictions,
            }
        )
    if result.probabilities is not None:
        width = len(result.probabilities[0]) if result.probabilities else 0
        outputs.append(
            {
                "name": "predict_proba",
                "datatype": "FP64",
                "shape": [decoded.n_rows, width],
                "data": [value for row in result.probabilities for value in row],  # flat
                "parameters": {"classes": json.dumps(result.classes)},
            }
        )
    body: dict[str, Any] = {"model_name": model, "model_version": str(version), "outputs": outputs}
    if infer_id is not None:
        body["id"] = infer_id
    return body


def model_metadata(
    *, model: str, version: int, versions: list[int], signature: Signature
) -> dict[str, Any]:
    """A model's metadata: its ready versions, input tensors (one per column) and outputs."""
    outputs = [{"name": "predict", "datatype": _DATATYPES[signature.predict_dtype], "shape": [-1]}]
    if signature.has_predict_proba:
        width = len(signature.classes or ()) or -1
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, width]})
    return {
        "name": model,
        "versions": [str(v) for v in sorted(versions)],
        "platform": "scikit-learn",
        "inputs": [
            {"name": column.name, "datatype": _DATATYPES[column.dtype], "shape": [-1]}
            for column in signature.inputs
        ],
        "outputs": outputs,
        "parameters": {
            "version": version,
            "task": signature.task,
            "classes": None if signature.classes is None else list(signature.classes),
            "estimator": signature.estimator,
        },
    }


# Open Inference datatypes → Triton's model configuration data types.
_CONFIG_TYPES = {"BYTES": "TYPE_STRING", "BOOL": "TYPE_BOOL", "INT64": "TYPE_INT64"}


def _config_tensor(tensor: dict[str, Any]) -> dict[str, Any]:
    datatype = tensor["datatype"]
    return {
        "name": tensor["name"],
        "data_type": _CONFIG_TYPES.get(datatype, f"TYPE_{datatype}"),
        "dims": tensor["shape"],
    }


def model_config(*, model: str, version: int, signature: Signature) -> dict[str, Any]:
    """Triton's model configuration (`GET /v2/models/<name>/config`), from the metadata: every
    tensor's first dimension is the rows of the request, so `max_batch_size` is 0 (the batch
    dimension is part of `dims`)."""
    metadata = model_metadata(model=model, version=version, versions=[version], signature=signature)
    return {
        "name": model,
        "platform": metadata["platform"],
        "backend": "mlplatform",
        "version_policy": {"specific": {"versions": [version]}},
        "max_batch_size": 0,
        "input": [_config_tensor(tensor) for tensor in metadata["inputs"]],
        "output": [_config_tensor(tensor) for tensor in metadata["outputs"]],
        "parameters": {
            key: {"string_value": json.dumps(value)}
            for key, value in metadata["parameters"].items()
        },
    }


def repository_entry(*, model: str, version: int | None, reason: str = "") -> dict[str, Any]:
    """One model of the repository index (`POST /v2/repository/index`)."""
    return {
        "name": model,
        "version": "" if version is None else str(version),
        "state": "UNAVAILABLE" if version is None else "READY",
        "reason": reason,
    }


def model_stats(*, figures: list[dict[str, Any]]) -> dict[str, Any]:
    """Triton's inference statistics from per-version figures (`name`, `version`, `requests`,
    `failures`, `rows`, `seconds`): successes and failures are counted; all time is the
    requests' whole answer time, reported under `success` (the queue and compute phases are not
    measured apart)."""
    stats = []
    for item in figures:
        zero = {"count": 0, "ns": 0}
        successes = item["requests"] - item["failures"]
        stats.append(
            {
                "name": item["name"],
                "version": item["version"],
                "last_inference": 0,
                "inference_count": item["rows"],
                "execution_count": successes,
                "inference_stats": {
                    "success": {"count": successes, "ns": int(item["seconds"] * 1e9)},
                    "fail": {"count": item["failures"], "ns": 0},
                    "queue": dict(zero),
                    "compute_input": dict(zero),
                    "compute_infer": dict(zero),
                    "compute_output": dict(zero),
                    "cache_hit": dict(zero),
                    "cache_miss": dict(zero),
                },
                "batch_stats": [],
            }
        )
    return {"model_stats": stats}


def error_body(body: Any) -> dict[str, Any]:
    """The v2 error shape, from the platform's error body (`{"detail", "field"?, "row"?}`)."""
    data = body if isinstance(body, dict) else {}
    extra = {k: v for k, v in data.items() if k in ("field", "row")}
    return {"error": str(data.get("detail", body)), **extra}
