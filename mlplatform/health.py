"""Liveness and readiness probes; no auth, no session, cheap enough to be hit every second."""

import os
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from mlplatform.celery import app as celery_app


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    url = celery_app.conf.broker_url or ""
    if url.startswith("filesystem"):
        # The embedded transport "connects" even when its folder is unusable; check the folder.
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise OSError(f"broker folder {folder} is not writable")
        return
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _check_storage() -> None:
    name = default_storage.save(f"health/{uuid.uuid4().hex}", ContentFile(b"ok"))
    default_storage.delete(name)


CHECKS = {"database": _check_database, "broker": _check_broker, "storage": _check_storage}


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:
            results[name] = f"error: {exc.__class__.__name__}: {exc}"
        else:
            results[name] = "ok"
    failing = [name for name, result in results.items() if result != "ok"]
    status = 503 if failing else 200
    return JsonResponse(
        {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": results},
        status=status,
    )
