"""A ready model version for the benchmarks that only need a model, made the way a user makes
one: `registry.services` stores the upload and validates it (scan, sandboxed load, ONNX
compilation), so the benchmarks serve exactly what the registry would have stored. The upload
pipeline itself is measured by bench/registry.py; the tests build ready versions with
tests/factories.py instead, which the benchmarks do not import."""

from typing import Any


def ready_version(
    name: str,
    data: bytes,
    *,
    input_example: list[dict[str, Any]] | None = None,
    alias: str | None = None,
) -> Any:
    """The next version of model `name` (registered if new) from `data`, a joblib dump.

    Raises:
        RuntimeError: validation did not make the version ready.
    """
    from django.core.files.base import ContentFile

    from registry import services
    from registry.models import ModelVersion, RegisteredModel

    model = RegisteredModel.objects.filter(name=name).first() or services.model_create(name=name)
    version = services.version_upload(
        model=model,
        file=ContentFile(data, name=f"{name}.joblib"),
        user=None,
        input_example=input_example,
    )
    version = services.version_validate(version_id=version.pk)
    if version.status != ModelVersion.Status.READY:
        raise RuntimeError(
            f"{name} v{version.version} is {version.status}: {version.status_message}"
        )
    if alias:
        services.alias_set(model=model, alias=alias, version_number=version.version, user=None)
    return version
