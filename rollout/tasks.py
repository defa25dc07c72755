"""Celery entry points for rollout: each takes an id and calls one service."""

from celery import shared_task

from rollout import services


@shared_task(acks_late=True)
def evaluation_run(evaluation_id: int) -> None:
    # A finished evaluation returns at once; a re-run of an interrupted one measures again.
    services.evaluation_run_job(evaluation_id=evaluation_id)


@shared_task(acks_late=True)
def dataset_build(dataset_id: int) -> None:
    services.dataset_build_job(dataset_id=dataset_id)
