"""Reads for the feature store: catalog lookups and search."""

from typing import Any

from django.db.models import Q, QuerySet

from features.models import DataSource, Entity, Feature, FeatureGroup, FeatureService
from jobs.models import Job
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


def group_jobs(*, group: FeatureGroup, limit: int = 10) -> list[Job]:
    kinds = [Job.Kind.INGESTION, Job.Kind.TRANSFORMATION, Job.Kind.MATERIALISATION]
    return list(
        Job.objects.filter(kind__in=kinds, params__group_id=group.pk).order_by("-created_at")[
            :limit
        ]
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
