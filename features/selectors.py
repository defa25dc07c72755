"""Reads for the feature store: catalog lookups and search."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery.schedules import crontab
from django.core.paginator import Page, Paginator
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from features.models import DataSource, Entity, Feature, FeatureGroup, FeatureService
from jobs.models import Job
from jobs.selectors import jobs_visible
from mlplatform.errors import NotFoundError


def _one(objects: QuerySet[Any], what: str) -> Any:
    found = objects.first()
    if found is None:
        raise NotFoundError(f"{what} not found.")
    return found


def entity_get(*, name: str) -> Entity:
    return _one(Entity.objects.filter(name=name), f"Entity '{name}'")


def source_get(*, name: str) -> DataSource:
    return _one(DataSource.objects.filter(name=name), f"Data source '{name}'")


def group_get(*, name: str) -> FeatureGroup:
    groups = FeatureGroup.objects.select_related("entity", "owner", "source")
    return _one(groups.filter(name=name), f"Feature group '{name}'")


def feature_get(*, group: str, name: str) -> Feature:
    features = Feature.objects.select_related("group__entity", "group__owner", "group__source")
    return _one(features.filter(group__name=group, name=name), f"Feature '{group}:{name}'")


def service_get(*, name: str) -> FeatureService:
    return _one(FeatureService.objects.filter(name=name), f"Feature service '{name}'")


def feature_search(
    *,
    q: str | None = None,
    entity: str | None = None,
    task: str | None = None,
    tag: str | None = None,
    owner: str | None = None,
    group: str | None = None,
) -> QuerySet[Feature]:
    """Features matching a text query (name, description, tags) and the filters.

    `tag` is `key` or `key=value`, matched against the feature's or its group's tags.
    """
    features = Feature.objects.select_related("group__entity", "group__owner")
    if q:
        features = features.filter(
            Q(name__icontains=q)
            | Q(description__icontains=q)
            | Q(group__name__icontains=q)
            | Q(group__description__icontains=q)
            | Q(tags__icontains=q)
            | Q(group__tags__icontains=q)
        )
    if entity:
        features = features.filter(group__entity__name=entity)
    if group:
        features = features.filter(group__name=group)
    if owner:
        features = features.filter(group__owner__name=owner)
    ids = None
    if task or tag:
        # JSON containment differs across SQLite and PostgreSQL; these lists are small.
        ids = [f.pk for f in features if _matches(f, task=task, tag=tag)]
        features = features.filter(pk__in=ids)
    return features.order_by("group__name", "position", "name")


def _matches(feature: Feature, *, task: str | None, tag: str | None) -> bool:
    if task and task not in (feature.group.tasks or []):
        return False
    if tag:
        key, _, value = tag.partition("=")
        tags: dict[str, Any] = {**(feature.group.tags or {}), **(feature.tags or {})}
        if key not in tags or (value and str(tags[key]) != value):
            return False
    return True


def group_jobs(*, group: FeatureGroup, user: Any = None, limit: int = 10) -> list[Job]:
    """The newest jobs that loaded or materialised `group`; with `user`, only those they may
    see (another team's jobs stay hidden, as on /jobs/)."""
    kinds = [Job.Kind.INGESTION, Job.Kind.TRANSFORMATION, Job.Kind.MATERIALISATION]
    jobs = Job.objects.all() if user is None else jobs_visible(user=user)
    return list(
        jobs.filter(kind__in=kinds, params__group_id=group.pk).order_by("-created_at")[:limit]
    )


def filter_choices() -> dict[str, list[str]]:
    """Values for the catalog's filter menus."""
    tasks: set[str] = set()
    tags: set[str] = set()
    for group in FeatureGroup.objects.only("tasks", "tags"):
        tasks.update(group.tasks or [])
        tags.update(f"{k}={v}" for k, v in (group.tags or {}).items())
    for feature_tags in Feature.objects.values_list("tags", flat=True):
        tags.update(f"{k}={v}" for k, v in (feature_tags or {}).items())
    owners = (
        FeatureGroup.objects.exclude(owner=None)
        .values_list("owner__name", flat=True)
        .distinct()
        .order_by("owner__name")
    )
    return {
        "entities": list(Entity.objects.values_list("name", flat=True)),
        "tasks": sorted(tasks),
        "tags": sorted(tags),
        "owners": [o for o in owners if o],
    }


# --- freshness and the catalog list -----------------------------------------------------------

_DAY = 86_400.0


@dataclass(frozen=True)
class Freshness:
    """How old a group's newest available row is, against how often new rows are expected."""

    newest_available: datetime | None
    age_seconds: float | None  # negative while the newest row is not yet available
    expected_seconds: float | None  # None: no rule says when rows arrive
    rule: str
    stale: bool


def _cron_period_seconds(expression: str) -> float | None:
    """The mean time between two runs of a five-field cron expression (None if invalid)."""
    parts = expression.split()
    if len(parts) != 5:
        return None
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    try:
        cron = crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
        )
    except (ValueError, TypeError):
        return None
    day_share = min(len(cron.day_of_week) / 7, len(cron.day_of_month) / 31)
    runs_per_day = len(cron.hour) * len(cron.minute) * day_share * len(cron.month_of_year) / 12
    return _DAY / runs_per_day if runs_per_day else None


def group_expected_seconds(group: FeatureGroup) -> tuple[float | None, str]:
    """How often `group` should get new rows, and the rule that says so."""
    if group.schedule:
        period = _cron_period_seconds(group.schedule)
        if period:
            return period, f"schedule {group.schedule}"
    rule = group.availability or {}
    if "daily_at" in rule:
        return _DAY, f"loaded nightly at {rule['daily_at']} UTC"
    if group.ttl_seconds:
        return float(group.ttl_seconds), "time to live"
    return None, "no schedule"


def group_freshness(
    *, group: FeatureGroup, newest_available: datetime | None, now: datetime | None = None
) -> Freshness:
    """Stale: the newest row is older than twice the expected interval between loads."""
    now = now or timezone.now()
    expected, rule = group_expected_seconds(group)
    if newest_available is None:
        return Freshness(None, None, expected, rule, stale=False)
    age = (now - newest_available).total_seconds()
    stale = expected is not None and age > 2 * expected
    return Freshness(newest_available, age, expected, rule, stale=stale)


CATALOG_SORTS = {
    "name": ("name", "group__name"),
    "group": ("group__name", "position", "name"),
    "entity": ("group__entity__name", "group__name", "position", "name"),
    "type": ("dtype", "group__name", "name"),
    "fresh": ("-newest_available", "group__name", "position", "name"),
}
CATALOG_PAGE_SIZE = 50


@dataclass(frozen=True)
class CatalogRow:
    feature: Feature
    freshness: Freshness


def catalog_page(*, filters: dict[str, str | None], sort: str, page: str | None) -> Page[Any]:
    """One page of the catalog: matching features in `sort` order (a key of CATALOG_SORTS,
    `-` before it reverses), each with its group's freshness."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    order = CATALOG_SORTS.get(key, CATALOG_SORTS["group"])
    if descending:
        order = tuple(o[1:] if o.startswith("-") else f"-{o}" for o in order)
    features = (
        feature_search(**filters)
        .annotate(newest_available=Max("group__partitions__max_available_at"))
        .order_by(*order)
    )
    result: Page[Any] = Paginator(features, CATALOG_PAGE_SIZE).get_page(page)
    now = timezone.now()
    result.object_list = [
        CatalogRow(
            feature=f,
            freshness=group_freshness(
                group=f.group,
                newest_available=f.newest_available,  # type: ignore[attr-defined]
                now=now,
            ),
        )
        for f in result.object_list
    ]
    return result


# --- lineage pages ----------------------------------------------------------------------------


def entity_groups(*, entity: Entity) -> QuerySet[FeatureGroup]:
    return entity.groups.select_related("source", "owner").order_by("name")


def source_groups(*, source: DataSource) -> QuerySet[FeatureGroup]:
    """Groups reading `source`: as their source or in their transformation."""
    return (
        FeatureGroup.objects.filter(Q(source=source) | Q(transformation_sources=source))
        .select_related("entity", "owner")
        .distinct()
        .order_by("name")
    )


def group_sources(*, group: FeatureGroup) -> list[DataSource]:
    sources = list(group.transformation_sources.all())
    if group.source is not None and group.source not in sources:
        sources.insert(0, group.source)
    return sources


def service_features(*, service: FeatureService) -> QuerySet[Feature]:
    return service.features.select_related("group__entity").order_by(
        "group__name", "position", "name"
    )


def services_of(*, features: Iterable[Feature]) -> QuerySet[FeatureService]:
    return (
        FeatureService.objects.filter(features__in=[f.pk for f in features])
        .distinct()
        .order_by("name")
    )


def versions_of(*, services: Iterable[FeatureService]) -> list[Any]:
    """The model versions linked to `services` (by model, newest first), each with `page_url`,
    through the foreign key the registry's versions hold."""
    versions = [
        version
        for service in services
        for version in service.model_versions.select_related("model").order_by(  # type: ignore[attr-defined]
            "model__name", "-version"
        )
    ]
    for version in versions:
        version.page_url = version.get_absolute_url()  # type: ignore[attr-defined]
    return versions


def group_lineage_jobs(*, group: FeatureGroup, user: Any, limit: int = 5) -> list[Job]:
    """The newest jobs that loaded `group` or read it for a training set, that `user` may see."""
    visible = jobs_visible(user=user)
    loads = list(
        visible.filter(
            kind__in=[Job.Kind.INGESTION, Job.Kind.TRANSFORMATION], params__group_id=group.pk
        ).order_by("-created_at")[:limit]
    )
    prefix = f"{group.name}:"
    training = [
        job
        for job in visible.filter(kind=Job.Kind.TRAINING_SET).order_by("-created_at")[:200]
        if any(str(ref).startswith(prefix) for ref in (job.params or {}).get("features", []))
    ][:limit]
    return sorted([*loads, *training], key=lambda job: job.created_at, reverse=True)[:limit]


def version_lineage_jobs(*, version: Any, user: Any, limit: int = 5) -> list[Job]:
    """The newest batch scoring jobs of a model version that `user` may see."""
    return list(
        jobs_visible(user=user)
        .filter(
            kind=Job.Kind.BATCH_SCORING,
            params__model=version.model.name,
            params__version=version.version,
        )
        .order_by("-created_at")[:limit]
    )
