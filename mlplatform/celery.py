"""The Celery app; every setting comes from Django settings with the CELERY_ prefix."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings.local")

app = Celery("mlplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="mlplatform.ping")
def ping(value: str = "pong") -> str:
    """Round-trip check used by /readyz-style probes and the test harness."""
    return value
