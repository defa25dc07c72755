"""Celery entry points for the feature store: each takes ids and calls one service."""

from celery import shared_task

from features import services


@shared_task(acks_late=True)
def ingestion_run(job_id: int) -> None:
    services.ingestion_run_job(job_id=job_id)  # a finished job is not started again


@shared_task(acks_late=True)
def transformation_run(job_id: int) -> None:
    services.transformation_run_job(job_id=job_id)  # appends only rows not yet stored


@shared_task
def transformation_scheduled(group_id: int) -> int | None:
    return services.transformation_scheduled(group_id=group_id)


@shared_task(acks_late=True)
def materialisation_run(job_id: int) -> None:
    services.materialisation_run_job(job_id=job_id)  # only newer values replace stored ones


@shared_task(acks_late=True)
def training_set_run(job_id: int) -> None:
    services.training_set_run_job(job_id=job_id)
