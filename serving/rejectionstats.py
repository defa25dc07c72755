"""4xx rejections of the prediction routes per model, version and field, for monitoring.

Every 4xx answer of a prediction route whose body names a `field` (an `InputError`, or any
`ApplicationError` whose `extra` names one) adds one to an in-memory count per (model, version,
field, minute); a background thread per process adds the counts to `RejectionMinute` rows every
FLUSH_SECONDS (and at exit), so the database sees a handful of rows a minute, never a write per
request. Field names come from clients (an unknown column is named as sent): they are cut to
FIELD_MAX characters, and beyond KEYS_MAX distinct keys waiting in a process the rest are
counted under OTHER.

With MLPLATFORM_LOG_BACKGROUND=False (tests, management commands) the counts are written at
once by the caller instead.
"""

import atexit
import logging
import threading
import time
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from serving.models import RejectionMinute

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 60.0
FIELD_MAX = 200
KEYS_MAX = 10_000
OTHER = "(other fields)"

Key = tuple[int, int | None, str, int]  # model id, version id, field, minute (epoch seconds)

_counts: dict[Key, int] = {}
_lock = threading.Lock()
_thread: threading.Thread | None = None


def record(*, model_id: int, version_id: int | None, field: str) -> None:
    """Count one 4xx answer naming `field`."""
    minute = int(time.time()) // 60 * 60
    key = (model_id, version_id, str(field)[:FIELD_MAX], minute)
    with _lock:
        if key not in _counts and len(_counts) >= KEYS_MAX:
            key = (model_id, version_id, OTHER, minute)
        _counts[key] = _counts.get(key, 0) + 1
    if not settings.MLPLATFORM_LOG_BACKGROUND:
        flush()
        return
    _ensure_thread()


def flush() -> int:
    """Write the counts gathered so far, in the caller's thread. Returns the rows written."""
    global _counts
    with _lock:
        taken, _counts = _counts, {}
    if not taken:
        return 0
    rows = [
        RejectionMinute(
            model_id=model_id,
            version_id=version_id,
            field=field,
            minute=datetime.fromtimestamp(minute, tz=UTC),
            count=count,
        )
        for (model_id, version_id, field, minute), count in taken.items()
    ]
    try:
        RejectionMinute.objects.bulk_create(rows)
    except DatabaseError:
        # One row at a time (a model deleted since fails alone); figures are best effort: a
        # failed write must not take the server down with it.
        for row in rows:
            try:
                row.save()
            except DatabaseError:
                logger.warning("could not record rejection count %s", row.field)
    return len(rows)


def _run() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        if not _counts:
            continue
        close_old_connections()
        try:
            flush()
        finally:
            connection.close()  # this thread's connection is not kept between flushes


def _ensure_thread() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _lock:
        if _thread is None or not _thread.is_alive():
            # Started lazily, so each gunicorn worker (forked after import) gets its own thread.
            _thread = threading.Thread(target=_run, name="rejection-counts", daemon=True)
            _thread.start()


atexit.register(flush)
