"""A ready model version stored as the registry stores it, for the benchmarks and the tests that
only need a model (the upload pipeline is measured by bench/registry.py and tested in
tests/registry/). The estimator is the caller's own, so it is compiled in this process, the way
the sandbox compiles an uploaded one; a model that does not compile gets the runner engine."""

import hashlib
from typing import Any


def ready_version(
    name: str,
    estimator: Any,
    data: bytes,
    *,
    input_example: list[dict[str, Any]] | None = None,
    alias: str | None = None,
    number: int = 1,
) -> Any:
    """Version `number` of model `name`: `data` is the joblib dump of `estimator`."""
    from django.conf import settings
    from django.core.files.base import ContentFile

    from registry.compilation import compile_or_explain
    from registry.models import ModelAlias, ModelVersion, RegisteredModel
    from registry.signature import signature_infer

    model, _ = RegisteredModel.objects.get_or_create(name=name)
    signature = signature_infer(estimator, input_example=input_example)
    graph, compilation = compile_or_explain(
        estimator, signature, input_example, tolerance=settings.MLPLATFORM_ONNX_TOLERANCE
    )
    version = ModelVersion(
        model=model,
        version=number,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        format=ModelVersion.Format.JOBLIB,
        status=ModelVersion.Status.READY,
        signature=signature,
        input_example=input_example,
        engine=ModelVersion.Engine.ONNX if graph else ModelVersion.Engine.PYTHON,
        compilation=compilation,
    )
    version.artifact.save("artifact.joblib", ContentFile(data), save=False)
    if graph:
        version.graph_sha256 = hashlib.sha256(graph).hexdigest()
        version.graph.save("graph.onnx", ContentFile(graph), save=False)
    version.save()
    if alias:
        ModelAlias.objects.create(model=model, alias=alias, version=version)
    return version
