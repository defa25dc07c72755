"""The Celery app; every setting comes from Django settings with the CELERY_ prefix."""

import os
from typing import Any

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings.local")

app = Celery("mlplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _content_types_fresh(**_: Any) -> None:
    """Each task reads content types afresh: a worker outlives database restores and the test
    suite's flushes, which renumber them, and the audit trail (django-auditlog) writes their ids.
    """
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()


@app.task(name="mlplatform.ping")
def ping(value: str = "pong") -> str:
    """Round-trip check used by /readyz-style probes and the test harness."""
    return value
