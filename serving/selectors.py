"""Reads for serving: which version answers a request, cached per process for a short TTL."""

import threading
import time
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from mlplatform.errors import ApplicationError
from registry import selectors as registry_selectors
from registry.models import ModelVersion, RegisteredModel
from serving.models import PredictionLog
from tenancy.services import readable_filter

_resolved: dict[tuple[str, int | None, str | None], tuple[float, ModelVersion]] = {}
_lock = threading.Lock()


def version_resolve(
    *, model_name: str, version: int | None = None, alias: str | None = None
) -> ModelVersion:
    """`registry.selectors.version_resolve`, cached per process for
    MLPLATFORM_ALIAS_TTL_SECONDS, so an alias move is seen by every process within that bound
    without any cross-process signal.

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
    found = registry_selectors.version_resolve(model_name=model_name, version=version, alias=alias)
    ttl = float(settings.MLPLATFORM_ALIAS_TTL_SECONDS)
    if ttl > 0:
        with _lock:
            if len(_resolved) > 10_000:  # unbounded names must not grow memory forever
                _resolved.clear()
            _resolved[key] = (now + ttl, found)
    return found


def models_serving(*, user: Any) -> list[tuple[str, int | None]]:
    """The models `user` may read, by name, each with the version that answers it by default
    (None when no version is ready)."""
    names = (
        RegisteredModel.objects.filter(readable_filter(user=user, model=RegisteredModel))
        .order_by("name")
        .values_list("name", flat=True)
    )
    found: list[tuple[str, int | None]] = []
    for name in names:
        try:
            found.append((name, version_resolve(model_name=name).version))
        except ApplicationError:
            found.append((name, None))
    return found


def model_exists(*, name: str) -> bool:
    return RegisteredModel.objects.filter(name=name).exists()


def resolution_cache_clear() -> None:
    with _lock:
        _resolved.clear()


def prediction_log_list(*, model: RegisteredModel) -> QuerySet[PredictionLog]:
    return (
        PredictionLog.objects.filter(model=model)
        .select_related("version")
        .order_by("-created_at", "-id")
    )
