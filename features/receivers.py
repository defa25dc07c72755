"""The feature store's answers to the job tracker's signals (connected in FeaturesConfig.ready)."""

from typing import Any

from django.dispatch import receiver

from features.models import FeatureGroup
from jobs import signals
from jobs.models import Job

_GROUP_KINDS = frozenset({Job.Kind.INGESTION, Job.Kind.TRANSFORMATION, Job.Kind.MATERIALISATION})


@receiver(signals.job_page_context, dispatch_uid="features.page_context")
def page_context(*, job: Job, **_: Any) -> dict[str, Any] | None:
    """A feature job's page links back to the group it worked on."""
    group_id = job.params.get("group_id") if isinstance(job.params, dict) else None
    if job.kind not in _GROUP_KINDS or not isinstance(group_id, int):
        return None
    group = FeatureGroup.objects.filter(pk=group_id).first()
    if group is None:
        return None
    return {"subject": {"label": f"feature group {group.name}", "url": group.get_absolute_url()}}
