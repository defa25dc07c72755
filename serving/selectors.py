"""Reads for serving: which version answers a request, cached per process for a short TTL."""

import threading
import time

from django.conf import settings
from django.db.models import QuerySet

from mlplatform.api import ConflictError, NotFoundError
from registry.models import ModelAlias, ModelVersion, RegisteredModel
from serving.models import PredictionLog

DEFAULT_ALIAS = "production"

_resolved: dict[tuple[str, int | None, str | None], tuple[float, ModelVersion]] = {}
_lock = threading.Lock()


def _lookup(*, model_name: str, version: int | None, alias: str | None) -> ModelVersion:
    versions = ModelVersion.objects.select_related("model")
    if version is not None:
        found = versions.filter(model__name=model_name, version=version).first()
        if found is None:
            if not RegisteredModel.objects.filter(name=model_name).exists():
                raise NotFoundError(f"Model '{model_name}' not found.", extra={"field": "model"})
            raise NotFoundError(
                f"Model '{model_name}' has no version {version}.", extra={"field": "version"}
            )
        if found.status != ModelVersion.Status.READY:
            raise ConflictError(
                f"Model '{model_name}' version {version} is {found.status}, not ready.",
                extra={"field": "version"},
            )
        return found
    if alias is not None:
        link = (
            ModelAlias.objects.select_related("version__model")
            .filter(model__name=model_name, alias=alias)
            .first()
        )
        if link is None:
            if not RegisteredModel.objects.filter(name=model_name).exists():
                raise NotFoundError(f"Model '{model_name}' not found.", extra={"field": "model"})
            raise NotFoundError(
                f"Model '{model_name}' has no alias '{alias}'.", extra={"field": "alias"}
            )
        if link.version.status != ModelVersion.Status.READY:
            raise ConflictError(
                f"Alias '{alias}' of '{model_name}' points at version {link.version.version}, "
                f"which is {link.version.status}.",
                extra={"field": "alias"},
            )
        return link.version
    link = (
        ModelAlias.objects.select_related("version__model")
        .filter(
            model__name=model_name,
            alias=DEFAULT_ALIAS,
            version__status=ModelVersion.Status.READY,
        )
        .first()
    )
    if link is not None:
        return link.version
    latest = (
        versions.filter(model__name=model_name, status=ModelVersion.Status.READY)
        .order_by("-version")
        .first()
    )
    if latest is None:
        if not RegisteredModel.objects.filter(name=model_name).exists():
            raise NotFoundError(f"Model '{model_name}' not found.", extra={"field": "model"})
        raise NotFoundError(
            f"Model '{model_name}' has no ready version yet.", extra={"field": "model"}
        )
    return latest


def version_resolve(
    *, model_name: str, version: int | None = None, alias: str | None = None
) -> ModelVersion:
    """The version that answers: an explicit number, an alias, or `production` else the highest
    ready version. Cached per process for MLPLATFORM_ALIAS_TTL_SECONDS, so an alias move is
    seen by every process within that bound without any cross-process signal.

    Raises:
        NotFoundError: unknown model, version or alias, or no ready version.
        ConflictError: the named version (or the alias's version) is not ready.
    """
    key = (model_name, version, alias)
    now = time.monotonic()
    with _lock:
        cached = _resolved.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    found = _lookup(model_name=model_name, version=version, alias=alias)
    ttl = float(settings.MLPLATFORM_ALIAS_TTL_SECONDS)
    if ttl > 0:
        with _lock:
            if len(_resolved) > 10_000:  # unbounded names must not grow memory forever
                _resolved.clear()
            _resolved[key] = (now + ttl, found)
    return found


def resolution_cache_clear() -> None:
    with _lock:
        _resolved.clear()


def prediction_log_list(*, model: RegisteredModel) -> QuerySet[PredictionLog]:
    return (
        PredictionLog.objects.filter(model=model)
        .select_related("version")
        .order_by("-created_at", "-id")
    )
