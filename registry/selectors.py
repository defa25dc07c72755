"""Reads for the registry."""

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Avg, Count, Max, Prefetch, Q, QuerySet, Sum

from jobs.models import Job
from jobs.selectors import jobs_visible
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
    return (
        ModelAlias.objects.filter(model=model)
        .select_related("version", "canary_version")
        .prefetch_related("shadows")
        .order_by("alias")
    )


def alias_get(*, name: str, alias: str) -> ModelAlias:
    """An alias of model `name`, with its policy's versions. Raises NotFoundError."""
    link = alias_list(model=model_get(name=name)).filter(alias=alias).first()
    if link is None:
        raise NotFoundError(f"Model '{name}' has no alias '{alias}'.", extra={"field": "alias"})
    return link


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


# --- pages: the models list, a version's page, comparing versions -------------------------------

ARCHIVED_TAG = "archived"
# ?sort= of the models list: name, newest upload, most versions (a leading "-" reverses).
MODEL_SORTS = {
    "name": ("name",),
    "-name": ("-name",),
    "updated": ("last_upload", "name"),
    "-updated": ("-last_upload", "name"),
    "versions": ("version_count", "name"),
    "-versions": ("-version_count", "name"),
}


def _archived_q() -> Q:
    """A model is archived when its tags say so (`archived`, any value but false/0/no/empty)."""
    falsy: list[Any] = [False, "false", "False", "0", "no", ""]
    return Q(tags__has_key=ARCHIVED_TAG) & ~Q(**{f"tags__{ARCHIVED_TAG}__in": falsy})


def model_page_list(
    *, q: str = "", tag: str = "", archived: bool = False, sort: str = "name"
) -> QuerySet[RegisteredModel]:
    """The models list page: `model_list`'s search, archived models left out unless asked for,
    each with its number of versions, newest version and last upload, in the order `sort` names
    (unknown sorts: by name).

    Raises:
        ApplicationError: a malformed tag filter.
    """
    models = (
        model_list(q=q, tag=tag)
        .prefetch_related("versions")
        .annotate(
            version_count=Count("versions", distinct=True),
            latest_number=Max("versions__version"),
            last_upload=Max("versions__created_at"),
        )
    )
    if not archived:
        models = models.exclude(_archived_q())
    return models.order_by(*MODEL_SORTS.get(sort, MODEL_SORTS["name"]))


def model_is_archived(model: RegisteredModel) -> bool:
    return RegisteredModel.objects.filter(_archived_q(), pk=model.pk).exists()


@dataclass(frozen=True)
class VersionPage:
    """What a version's page shows, read in one place."""

    version: ModelVersion
    input_example_json: str
    measured: list[tuple[str, Any]]
    feature_service: Any  # features.FeatureService (a foreign key by string: no import)
    feature_groups: list[Any]
    jobs: list[Job]
    log_count: int | None  # None: the user may not read the prediction log
    log_preview: list[Any]
    offers_artifact: bool  # rejected versions offer neither Try-it nor their refused file
    deviation: str  # the compilation's largest deviation, to 3 significant digits ("" if none)


def version_page(*, model: RegisteredModel, version: int, user: Any) -> VersionPage:
    """Raises NotFoundError for a version the model does not have."""
    found = version_get(model=model, version=version)
    example = found.input_example
    service = found.feature_service
    groups: list[Any] = []
    if service is not None:
        groups = sorted(
            {feature.group for feature in service.features.select_related("group")},
            key=lambda g: g.name,
        )
    jobs = list(
        jobs_visible(user=user)
        .filter(Q(batch__version=found) | Q(pk=found.validation_job_id or 0))
        .order_by("-created_at")[:20]
    )
    readable = user.has_perm("registry.read_registeredmodel_data", model)
    logs = found.prediction_logs.order_by("-created_at", "-id") if readable else None
    measured: list[tuple[str, Any]] = []
    compilation = found.compilation or {}
    deviation = ""
    if isinstance(compilation.get("max_deviation"), int | float):
        deviation = f"{compilation['max_deviation']:.3g}"
        measured.append(
            (
                f"largest ONNX deviation on {compilation.get('probe_rows', '?')} probe rows",
                deviation,
            )
        )
    if logs is not None:
        stats = logs.aggregate(
            requests=Count("id"), rows=Sum("n_rows"), mean_latency=Avg("latency_ms")
        )
        if stats["requests"]:
            measured += [
                ("logged requests", stats["requests"]),
                ("logged rows", stats["rows"]),
                ("mean latency (ms, logged requests)", round(stats["mean_latency"], 3)),
            ]
    return VersionPage(
        version=found,
        input_example_json=json.dumps(example, indent=2) if example is not None else "",
        measured=measured,
        feature_service=service,
        feature_groups=groups,
        jobs=jobs,
        log_count=logs.count() if logs is not None else None,
        log_preview=list(logs[:5]) if logs is not None else [],
        offers_artifact=found.status != ModelVersion.Status.REJECTED,
        deviation=deviation,
    )


def artifact_version_get(*, model: RegisteredModel, version: int) -> ModelVersion:
    """The version whose artifact may be downloaded: a rejected version's file is the refused
    file, never handed out.

    Raises:
        NotFoundError: no such version. ConflictError: the version was rejected.
    """
    found = version_get(model=model, version=version)
    if found.status == ModelVersion.Status.REJECTED:
        raise ConflictError(
            f"{model.name} v{version} was rejected; its file is not offered for download."
        )
    return found


@dataclass(frozen=True)
class Comparison:
    versions: list[ModelVersion]
    missing: list[int]
    metric_names: list[str]
    # per metric: [(version, value, is_best)], best = highest, or lowest for error/loss metrics
    metric_rows: list[tuple[str, list[tuple[ModelVersion, Any, bool]]]]
    columns: list[tuple[str, list[str | None], str]]  # name, dtype per version, change


LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "rmse", "mape", "logloss", "brier")


def metric_lower_is_better(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in LOWER_IS_BETTER)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def versions_compare(*, model: RegisteredModel, numbers: list[int]) -> Comparison:
    """Versions side by side: each metric with its best value marked (highest; lowest for
    loss/error-like names), and the input columns with what changed across the versions
    (added, removed, dtype changed)."""
    wanted = list(dict.fromkeys(numbers))
    found = {v.version: v for v in version_list(model=model).filter(version__in=wanted)}
    versions = [found[n] for n in wanted if n in found]
    names = sorted({key for v in versions for key in (v.metrics or {})})
    rows = []
    for name in names:
        values = [(v, (v.metrics or {}).get(name)) for v in versions]
        numeric = [n for _, value in values if (n := _number(value)) is not None]
        best = None
        if len(numeric) > 1:
            best = min(numeric) if metric_lower_is_better(name) else max(numeric)
        rows.append(
            (
                name,
                [(v, value, best is not None and _number(value) == best) for v, value in values],
            )
        )
    columns: dict[str, list[str | None]] = {}
    for index, v in enumerate(versions):
        for column in v.signature.inputs:
            columns.setdefault(column.name, [None] * len(versions))[index] = column.dtype
    described = []
    for column_name, dtypes in columns.items():
        present = [d for d in dtypes if d is not None]
        if len(present) < len(dtypes):
            if dtypes[0] is None:
                change = "added"
            elif dtypes[-1] is None:
                change = "removed"
            else:
                change = "not in every version"
        elif len(set(present)) > 1:
            change = "dtype changed"
        else:
            change = ""
        described.append((column_name, dtypes, change))
    return Comparison(
        versions=versions,
        missing=[n for n in wanted if n not in found],
        metric_names=names,
        metric_rows=rows,
        columns=described,
    )


def alias_rollbacks(*, model: RegisteredModel) -> dict[str, int]:
    """Per alias, the version it pointed at before its last move (what a rollback restores);
    aliases created fresh have none."""
    current = {a.alias: a.version.version for a in alias_list(model=model)}
    found: dict[str, int] = {}
    seen: set[str] = set()
    for change in AliasChange.objects.filter(model=model, alias__in=list(current)).order_by(
        "-changed_at", "-id"
    ):
        if change.alias in seen:
            continue
        seen.add(change.alias)
        if change.to_version == current[change.alias] and change.from_version is not None:
            found[change.alias] = change.from_version
    return found
