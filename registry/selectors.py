"""Reads for the registry."""

import re

from django.db.models import Prefetch, Q, QuerySet

from mlplatform.errors import ApplicationError, ConflictError, NotFoundError
from registry.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel

TAG_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def model_list(*, q: str = "", tag: str = "") -> QuerySet[RegisteredModel]:
    """Models matching a search (name, description) and a tag (`key` or `key:value`)."""
    models = RegisteredModel.objects.select_related("owner").prefetch_related(
        Prefetch("aliases", queryset=ModelAlias.objects.select_related("version"))
    )
    if q:
        models = models.filter(Q(name__icontains=q) | Q(description__icontains=q))
    if tag:
        key, sep, value = tag.replace("=", ":").partition(":")
        if not TAG_KEY_RE.match(key) or "__" in key:
            raise ApplicationError("tag: use key or key:value with letters, digits, - and _.")
        models = (
            models.filter(**{f"tags__{key}": value}) if sep else models.filter(tags__has_key=key)
        )
    return models.order_by("name")


def model_get(*, name: str) -> RegisteredModel:
    """Raises NotFoundError naming the model."""
    model = RegisteredModel.objects.select_related("owner").filter(name=name).first()
    if model is None:
        raise NotFoundError(f"There is no model named {name!r}.")
    return model


def version_list(*, model: RegisteredModel) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(model=model)
        .select_related("model", "uploaded_by")
        .prefetch_related("aliases")
        .order_by("-version")
    )


def version_get(*, model: RegisteredModel, version: int) -> ModelVersion:
    found = version_list(model=model).filter(version=version).first()
    if found is None:
        raise NotFoundError(f"{model.name} has no version {version}.")
    return found


def latest_version(*, model: RegisteredModel) -> ModelVersion | None:
    return model.versions.order_by("-version").first()


def alias_list(*, model: RegisteredModel) -> QuerySet[ModelAlias]:
    return ModelAlias.objects.filter(model=model).select_related("version").order_by("alias")


def alias_history(*, model: RegisteredModel, limit: int = 50) -> QuerySet[AliasChange]:
    return AliasChange.objects.filter(model=model).select_related("changed_by")[:limit]


DEFAULT_ALIAS = "production"


def _not_found(model_name: str, message: str, field: str) -> NotFoundError:
    """What is missing: the model itself, or (it exists) the part named by `message`."""
    if not RegisteredModel.objects.filter(name=model_name).exists():
        return NotFoundError(f"Model '{model_name}' not found.", extra={"field": "model"})
    return NotFoundError(message, extra={"field": field})


def version_resolve(
    *,
    model_name: str,
    version: int | None = None,
    alias: str | None = None,
    not_ready: type[ApplicationError] = ConflictError,
) -> ModelVersion:
    """The ready version that answers for a model: a version number, an alias, or else alias
    `production` (when its version is ready), else the highest ready version. One query on the
    way to a version that exists; the reasons it does not are looked up only on failure.

    `not_ready` is the error for a named version, or an alias's version, that exists but is not
    ready: a conflict (409) for the prediction routes, a plain 400 for a batch submission.

    Raises:
        NotFoundError: no such model, version or alias, or no ready version.
        ApplicationError: both a version and an alias.
    """
    if version is not None and alias:
        raise ApplicationError(
            "Give either a version or an alias, not both.", extra={"field": "version"}
        )
    versions = ModelVersion.objects.select_related("model")
    if version is not None:
        found = versions.filter(model__name=model_name, version=version).first()
        if found is None:
            raise _not_found(
                model_name, f"Model '{model_name}' has no version {version}.", "version"
            )
        if found.status != ModelVersion.Status.READY:
            raise not_ready(
                f"Model '{model_name}' version {version} is {found.status}, not ready: "
                f"{found.status_message or 'validation has not finished'}.",
                extra={"field": "version"},
            )
        return found
    links = ModelAlias.objects.select_related("version__model").filter(model__name=model_name)
    if alias:
        link = links.filter(alias=alias).first()
        if link is None:
            raise _not_found(model_name, f"Model '{model_name}' has no alias '{alias}'.", "alias")
        if link.version.status != ModelVersion.Status.READY:
            raise not_ready(
                f"Alias '{alias}' of '{model_name}' points at version {link.version.version}, "
                f"which is {link.version.status}.",
                extra={"field": "alias"},
            )
        return link.version
    link = links.filter(alias=DEFAULT_ALIAS, version__status=ModelVersion.Status.READY).first()
    if link is not None:
        return link.version
    latest = (
        versions.filter(model__name=model_name, status=ModelVersion.Status.READY)
        .order_by("-version")
        .first()
    )
    if latest is None:
        raise _not_found(model_name, f"Model '{model_name}' has no ready version yet.", "model")
    return latest
