"""Background work for the registry: validating uploaded versions on a worker."""

from celery import shared_task

from registry import services
from registry.models import ModelVersion


# The sandbox has its own (shorter) timeout; these limits only catch a stuck worker.
@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def version_validate_task(version_id: int) -> str:
    """Validate one version; idempotent (a finished version returns at once), so acks_late."""
    try:
        version = services.version_validate(version_id=version_id)
    except ModelVersion.DoesNotExist:
        return "deleted"  # the model or version was deleted before its turn came
    except Exception:
        # Never leave a version pending forever; the traceback still reaches the worker log.
        services.version_reject(
            version_id=version_id,
            message="Validation failed with an internal error; ask an operator to check the logs.",
        )
        raise
    return str(version.status)


@shared_task(acks_late=True, time_limit=300, soft_time_limit=270)
def version_requeue_stale() -> int:
    """Periodic (every 5 minutes): re-send validation for versions stuck in pending."""
    return services.version_requeue_stale()
