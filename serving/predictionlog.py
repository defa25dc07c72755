"""The prediction log writer: sampled entries are queued in memory and written by a background
thread in batches, so a request never waits on a database write.

Entries are flushed when MLPLATFORM_LOG_BATCH_SIZE accumulate or MLPLATFORM_LOG_FLUSH_SECONDS
pass, and at process exit. With MLPLATFORM_LOG_BACKGROUND=False (tests, management commands)
entries are written at once by the caller instead.
"""

import atexit
import logging
import queue
import random
import threading
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from serving.models import PredictionLog

logger = logging.getLogger(__name__)

_queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=100_000)
_thread: threading.Thread | None = None
_thread_lock = threading.Lock()


def sampled() -> bool:
    rate = float(settings.MLPLATFORM_LOG_SAMPLE_RATE)
    return rate > 0 and (rate >= 1 or random.random() < rate)  # noqa: S311 - sampling, not crypto


def enqueue(entry: dict[str, Any]) -> None:
    """Queue one PredictionLog's fields; dropped (and counted in the log) if the queue is full."""
    if not settings.MLPLATFORM_LOG_BACKGROUND:
        _write([entry])
        return
    _ensure_thread()
    try:
        _queue.put_nowait(entry)
    except queue.Full:
        logger.warning("prediction log queue full; dropping an entry")


def flush() -> int:
    """Write everything queued now, in the caller's thread. Returns the number written."""
    entries = []
    while True:
        try:
            entries.append(_queue.get_nowait())
        except queue.Empty:
            break
    if entries:
        _write(entries)
    return len(entries)


def _write(entries: list[dict[str, Any]]) -> None:
    try:
        PredictionLog.objects.bulk_create([PredictionLog(**entry) for entry in entries])
    except DatabaseError:
        # Logging is best effort: a failed write must not take the server down with it.
        logger.exception("could not write %d prediction log entries", len(entries))


def _run() -> None:
    while True:
        batch_size = int(settings.MLPLATFORM_LOG_BATCH_SIZE)
        timeout = float(settings.MLPLATFORM_LOG_FLUSH_SECONDS)
        try:
            first = _queue.get(timeout=timeout)
        except queue.Empty:
            continue
        entries = [first]
        while len(entries) < batch_size:
            try:
                entries.append(_queue.get(timeout=timeout))
            except queue.Empty:
                break
        close_old_connections()
        _write(entries)
        # This thread's connection is not reused between batches; give it back.
        connection.close()


def _ensure_thread() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _thread_lock:
        if _thread is None or not _thread.is_alive():
            # Started lazily, so each gunicorn worker (forked after import) gets its own thread.
            _thread = threading.Thread(target=_run, name="prediction-log", daemon=True)
            _thread.start()


atexit.register(flush)
