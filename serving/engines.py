"""What answers a prediction for a ready version: its ONNX graph in onnxruntime, or a sandboxed
model runner holding its pickle. Web and worker processes never deserialise an artifact.

- `OnnxEngine` runs the graph compiled and proven equivalent at validation, in this process. A
  graph is data: inline tensors and standard operators, checked before it was stored
  (`registry.graphs`), its sha256 checked again here on every load.
- `RunnerEngine` forwards arrays to a confined runner process (`serving.runners`), for versions
  that did not compile. A crash or timeout there is this request's 503, never this process's.

Both take the matrix `serving.codecs` built (an array, or a DataFrame when a column holds text)
and return `predict` / `predict_proba` arrays.
"""

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from mlplatform.errors import ApplicationError
from registry.compilation import feed, session
from registry.models import ModelVersion
from registry.types import Signature
from serving import runners


class EngineUnavailable(ApplicationError):
    """The version cannot be served right now; a 503 naming it."""

    status_code = 503


class EngineInputError(ValueError):
    """The model refused values that passed the signature checks; a 400 for the client."""


def _runtime_input_errors() -> tuple[type[Exception], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return (state.Fail, state.InvalidArgument)


_RUNTIME_INPUT_ERRORS = _runtime_input_errors()


class Engine(Protocol):
    has_proba: bool

    def outputs(self, matrix: Any, wanted: Sequence[str]) -> dict[str, np.ndarray]: ...


class OnnxEngine:
    def __init__(self, graph: bytes, *, signature: Signature, compilation: dict[str, Any]):
        self.session = session(graph)
        self.layout = str(compilation.get("inputs", "matrix"))
        self.precision = str(compilation.get("precision", "float64"))
        self.names = signature.column_names
        self.has_proba = signature.has_predict_proba
        outputs = [o.name for o in self.session.get_outputs()]
        self.label = outputs[0]
        self.proba = outputs[1] if self.has_proba and len(outputs) > 1 else None

    def outputs(self, matrix: Any, wanted: Sequence[str]) -> dict[str, np.ndarray]:
        names = [self.label]
        if "predict_proba" in wanted and self.proba is not None:
            names.append(self.proba)
        inputs = feed(matrix, layout=self.layout, names=self.names, precision=self.precision)
        try:
            results = self.session.run(names, inputs)
        except _RUNTIME_INPUT_ERRORS as exc:
            # Inputs passed the signature checks, so what the graph refuses is still the
            # client's values (an unseen category, say): say what the operator said.
            message = str(exc)
            raise EngineInputError(message.rpartition("Status Message: ")[2] or message) from exc
        found: dict[str, np.ndarray] = {}
        if "predict" in wanted:
            found["predict"] = np.asarray(results[0]).ravel()
        if len(results) > 1:
            found["predict_proba"] = np.asarray(results[1])
        return found


class RunnerEngine:
    def __init__(self, spec: runners.RunnerSpec, *, has_proba: bool):
        self.spec = spec
        self.has_proba = has_proba

    def outputs(self, matrix: Any, wanted: Sequence[str]) -> dict[str, np.ndarray]:
        return runners.runner_outputs(self.spec, matrix, wanted)


def runner_spec(version: ModelVersion) -> runners.RunnerSpec:
    signature = version.signature
    return runners.RunnerSpec(
        key=version.sha256,
        label=f"{version.model.name} v{version.version}",
        format=version.format,
        trusted_types=signature.trusted_types or (),
        columns=tuple(signature.column_names),
        named_columns=signature.named_columns,
        # The storage's own open: a FieldFile is one object shared by every thread.
        open_artifact=lambda: version.artifact.storage.open(version.artifact.name, "rb"),
    )


def engine_build(version: ModelVersion) -> Engine:
    """The engine for a ready version.

    Raises:
        EngineUnavailable: not ready, accepted before the current walls (no engine recorded),
            or its stored graph no longer matches the sha256 recorded at validation.
    """
    label = f"{version.model.name} version {version.version}"
    if version.status != ModelVersion.Status.READY:
        raise EngineUnavailable(f"{label} is {version.status}, not ready.")
    signature = version.signature
    if version.engine == ModelVersion.Engine.ONNX:
        with version.graph.open("rb") as stream:
            graph = stream.read()
        if hashlib.sha256(graph).hexdigest() != version.graph_sha256:
            raise EngineUnavailable(
                f"{label} cannot be served: its stored graph was modified after validation "
                "(its sha256 no longer matches); refusing to serve it."
            )
        return OnnxEngine(graph, signature=signature, compilation=version.compilation or {})
    if version.engine == ModelVersion.Engine.PYTHON:
        return RunnerEngine(runner_spec(version), has_proba=signature.has_predict_proba)
    raise EngineUnavailable(
        f"{label} was accepted before models were sandboxed and compiled; it is not served "
        "until re-validated (python manage.py versions_revalidate)."
    )
