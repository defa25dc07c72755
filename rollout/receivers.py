"""The promotion gate's answers to the registry's signals."""

import logging
from typing import Any

from django.dispatch import receiver
from django.urls import reverse

from jobs import signals as job_signals
from jobs.models import Job
from mlplatform.errors import ApplicationError
from registry import signals
from registry.models import ModelAlias, ModelVersion
from rollout import gate, selectors, services
from rollout.models import Evaluation, EvaluationDataset

logger = logging.getLogger(__name__)


@receiver(signals.alias_moving, sender=ModelAlias, dispatch_uid="rollout-gate")
def alias_moving(
    sender: Any,
    *,
    model: Any,
    alias: str,
    version: Any,
    previous: Any,
    user: Any,
    reason: str,
    kind: str,
    **kwargs: Any,
) -> dict[str, Any] | None:
    """Refuses (ConflictError) a move of a gated alias past the model's gate."""
    return gate.gate_check(
        model=model,
        alias=alias,
        version=version,
        previous=previous,
        user=user,
        reason=reason,
        kind=kind,
    )


@receiver(signals.version_ready, sender=ModelVersion, dispatch_uid="rollout-evaluate")
def version_ready(sender: Any, *, version: Any, **kwargs: Any) -> None:
    """A new ready version of a gated model is evaluated on the gate's dataset at once."""
    found = selectors.gate_of(model=version.model)
    if found is None or found.dataset.status != EvaluationDataset.Status.READY:
        return
    try:
        services.evaluation_ensure(version=version, dataset=found.dataset)
    except ApplicationError:
        # The version is ready either way; the gate queues the evaluation when it is needed.
        logger.exception("could not queue the evaluation of %s", version)


@receiver(job_signals.job_page_context, dispatch_uid="rollout.page_context")
def page_context(*, job: Job, **_: Any) -> dict[str, Any] | None:
    """An evaluation job's page links to the rollout page of its version."""
    if job.kind != Job.Kind.EVALUATION:
        return None
    found = Evaluation.objects.filter(job=job).select_related("version__model").first()
    if found is None:
        return None
    model = found.version.model
    url = reverse("rollout:model", args=[model.name]) + f"?candidate={found.version.version}"
    return {"subject": {"label": f"{model.name} v{found.version.version} rollout", "url": url}}
