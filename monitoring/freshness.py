"""Freshness of feature groups: how old each group's newest available row is against the
interval its schedule or availability rule expects (features.selectors.group_freshness), read
from the offline store's partition records. Stale groups raise the `stale` alert
(monitoring/alerts.py)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max
from django.utils import timezone

from features.models import FeatureGroup
from features.selectors import Freshness, group_freshness


@dataclass(frozen=True)
class GroupFreshness:
    group: FeatureGroup
    freshness: Freshness

    @property
    def ratio(self) -> float | None:
        """Age in expected intervals (None: no data, or no rule says when rows arrive)."""
        found = self.freshness
        if found.age_seconds is None or not found.expected_seconds:
            return None
        return found.age_seconds / found.expected_seconds


def groups_freshness(
    *, groups: Iterable[FeatureGroup] | None = None, now: datetime | None = None
) -> list[GroupFreshness]:
    """Each group's freshness, by name; every group when `groups` is None."""
    now = now or timezone.now()
    found = FeatureGroup.objects.all()
    if groups is not None:
        found = found.filter(pk__in=[g.pk for g in groups])
    annotated = found.annotate(newest=Max("partitions__max_available_at")).order_by("name")
    return [
        GroupFreshness(group, group_freshness(group=group, newest_available=group.newest, now=now))
        for group in annotated
    ]
