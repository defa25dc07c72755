"""The monitoring run: for one model, the current hour and day windows of its logged traffic
(and the previous hour, finished since the last hourly run), then live accuracy over the
feedback lookback, skew for versions linked to a feature service, freshness of the groups its
versions read, and every alert rule evaluated on the result. Run as a job (`POST
/api/v1/models/{name}/monitoring/run`), and hourly by beat for every model with traffic."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs import services as job_services
from jobs.models import Job
from mlplatform.errors import ConflictError
from mlplatform.tasks import enqueue_after_commit
from monitoring import accuracy, alerts, selectors, skew, tasks, windows
from monitoring.models import Feedback, MonitoringWindow
from registry.models import RegisteredModel

HOUR = MonitoringWindow.Granularity.HOUR
DAY = MonitoringWindow.Granularity.DAY
STEPS = 5  # windows, accuracy, skew, freshness, alerts


def monitoring_run(
    *,
    model: RegisteredModel,
    now: datetime | None = None,
    step_done: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Compute the model's current windows and their figures, then evaluate its alerts;
    returns a summary (the job's result). `step_done` is called after each of the STEPS."""
    now = now or timezone.now()

    def done() -> None:
        if step_done is not None:
            step_done()

    hour_start = windows.window_floor(now - timedelta(hours=1), HOUR)
    day_start = windows.window_floor(now - timedelta(hours=1), DAY)
    computed = [
        *windows.windows_compute(model=model, granularity=HOUR, start=hour_start, end=now),
        *windows.windows_compute(model=model, granularity=DAY, start=day_start, end=now),
    ]
    done()
    lookback = windows.window_floor(
        now - timedelta(days=float(settings.MLPLATFORM_FEEDBACK_LOOKBACK_DAYS)), DAY
    )
    # Windows of earlier days change only with new feedback: without any since the last run,
    # only the windows computed now are measured (the log of the lookback is not read again).
    labelled = accuracy.accuracy_compute(
        model=model,
        since=lookback if _feedback_since_last_run(model) else day_start,
        until=now,
        received_since=lookback,
    )
    done()
    skewed = skew.skew_compute(model=model, windows=computed)
    done()
    groups = selectors.groups_of_model(model=model)
    stale = alerts.group_alerts_evaluate(groups=groups, now=now)
    done()
    fired = alerts.model_alerts_evaluate(model=model, now=now)
    done()
    return {
        "windows": len(computed),
        "labelled_windows": labelled,
        "skew_windows": skewed,
        "groups": len(groups),
        "alerts_fired": fired["fired"] + stale["fired"],
        "alerts_resolved": fired["resolved"] + stale["resolved"],
        "firing": len(selectors.alerts_firing(model=model)),
    }


def _feedback_since_last_run(model: RegisteredModel) -> bool:
    last = (
        Job.objects.filter(
            kind=Job.Kind.MONITORING, params__model_id=model.pk, status=Job.Status.SUCCEEDED
        )
        .order_by("-started_at")
        .first()
    )
    if last is None or last.started_at is None:
        return True
    return Feedback.objects.filter(model=model, received_at__gte=last.started_at).exists()


def monitoring_request(*, model: RegisteredModel, user: Any = None) -> Job:
    """Queue a monitoring run of the model as a job, on a worker.

    Raises:
        ConflictError: a run of the model is already queued or running.
    """
    with transaction.atomic():
        busy = (
            Job.objects.select_for_update()
            .filter(
                kind=Job.Kind.MONITORING,
                params__model_id=model.pk,
                # A job older than a task's time limit is not waited for (a lost message).
                created_at__gte=timezone.now()
                - timedelta(seconds=int(settings.CELERY_TASK_TIME_LIMIT)),
            )
            .exclude(status__in=Job.FINISHED)
            .first()
        )
        if busy is not None:
            raise ConflictError(
                f"A monitoring run of {model.name} is already {busy.status} (job {busy.pk}).",
                extra={"job": busy.pk},
            )
        job = job_services.job_create(
            kind=Job.Kind.MONITORING,
            description=f"Monitoring of {model.name}"[:300],
            submitted_by=user,
            owner=model.owner,
            total=STEPS,
            unit="steps",
            params={"model": model.name, "model_id": model.pk},
        )
        enqueue_after_commit(tasks.monitoring_run, job.pk)
    return job


def monitoring_run_job(*, job_id: int) -> None:
    """The job's work: a finished or cancelled job returns at once."""
    with job_services.job_running(job_id=job_id) as job:
        if job is None:
            return
        model = RegisteredModel.objects.filter(pk=job.params.get("model_id")).first()
        if model is None:
            job_services.job_fail(job_id=job_id, error="The model was deleted.")
            return
        result = monitoring_run(
            model=model, step_done=lambda: job_services.job_advance(job_id=job_id, done=1)
        )
        job_services.job_succeed(job_id=job_id, result=result)


def models_with_traffic(*, now: datetime | None = None) -> list[RegisteredModel]:
    """Models with log partitions in the last two hours."""
    now = now or timezone.now()
    start = windows.window_floor(now - timedelta(hours=1), HOUR)
    return [
        model
        for model in RegisteredModel.objects.order_by("name")
        if windows.partitions(model.pk, start, now)
    ]


def monitoring_run_all(*, now: datetime | None = None) -> list[int]:
    """The hourly run: a monitoring job per model with traffic (skipping models whose run is
    still going), and the freshness of every feature group. Returns the jobs queued."""
    queued = []
    for model in models_with_traffic(now=now):
        try:
            queued.append(monitoring_request(model=model).pk)
        except ConflictError:
            continue
    alerts.group_alerts_evaluate(groups=list(selectors.feature_groups()), now=now)
    return queued
