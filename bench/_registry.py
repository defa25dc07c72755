"""A ready model version stored as the registry stores it, for the benchmarks (the upload
pipeline is measured by bench/registry.py, not by the benchmarks that only need a model)."""

import hashlib
from typing import Any


def ready_version(
    name: str,
    estimator: Any,
    data: bytes,
    *,
    input_example: list[dict[str, Any]] | None = None,
    alias: str | None = None,
) -> Any:
    """Version 1 of model `name`: `data` is the joblib dump of `estimator`."""
    from django.core.files.base import ContentFile

    from registry.models import ModelAlias, ModelVersion, RegisteredModel
    from registry.signature import signature_infer

    model, _ = RegisteredModel.objects.get_or_create(name=name)
    version = ModelVersion(
        model=model,
        version=1,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        format=ModelVersion.Format.JOBLIB,
        status=ModelVersion.Status.READY,
        signature=signature_infer(estimator, input_example=input_example),
        input_example=input_example,
    )
    version.artifact.save("artifact.joblib", ContentFile(data), save=False)
    version.save()
    if alias:
        ModelAlias.objects.create(model=model, alias=alias, version=version)
    return version
