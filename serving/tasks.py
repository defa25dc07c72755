"""Celery entry points for serving: each calls one service."""

from celery import shared_task

from serving import services


@shared_task(acks_late=True)
def prediction_log_expire() -> dict[str, int]:
    """Hourly (beat): the prediction log past MLPLATFORM_LOG_RETENTION_DAYS is deleted."""
    # Idempotent: what is gone stays gone; a second run finds nothing more.
    return services.prediction_log_expire()
