"""Monitoring's answers to the signals of the apps below it: a version evaluated, or made
ready, gets its reference profile."""

import logging
from typing import Any

from django.dispatch import receiver

from mlplatform.errors import ApplicationError
from monitoring import reference
from monitoring.models import ReferenceProfile
from registry import signals as registry_signals
from registry.models import ModelVersion
from rollout import selectors as rollout_selectors
from rollout import signals as rollout_signals
from rollout.models import Evaluation, EvaluationDataset

logger = logging.getLogger(__name__)


@receiver(
    rollout_signals.evaluation_finished, sender=Evaluation, dispatch_uid="monitoring-reference"
)
def evaluation_finished(sender: Any, *, evaluation: Evaluation, **kwargs: Any) -> None:
    """The evaluated rows become the version's reference, unless it has an uploaded one or
    one of that dataset already: profiled by a monitoring job of its own, so the evaluation's
    job ends as it did."""
    version, dataset = evaluation.version, evaluation.dataset
    current = reference.reference_profile(version)
    if current is not None and (
        current.source == ReferenceProfile.Source.UPLOAD
        or current.profile.get("dataset") == dataset.pk
    ):
        return
    try:
        reference.reference_job_request(version=version, dataset=dataset)
    except ApplicationError:
        logger.exception("could not queue the reference profile of %s", version)


@receiver(registry_signals.version_ready, sender=ModelVersion, dispatch_uid="monitoring-reference")
def version_ready(sender: Any, *, version: ModelVersion, **kwargs: Any) -> None:
    """A new ready version is profiled on its model's evaluation dataset, as a job. A gated
    model's version is evaluated at once on the gate's dataset, whose end profiles it, so
    nothing is queued here then."""
    gate = rollout_selectors.gate_of(model=version.model)
    if gate is not None and gate.dataset.status == EvaluationDataset.Status.READY:
        return
    if reference.reference_profile(version) is not None:
        return
    dataset = reference.dataset_for(version)
    if dataset is None:
        return
    try:
        reference.reference_job_request(version=version, dataset=dataset)
    except ApplicationError:
        logger.exception("could not queue the reference profile of %s", version)
