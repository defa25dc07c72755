"""Per-minute figures of the versions behind an alias with a traffic policy, for its page.

With MLPLATFORM_LOG_BACKGROUND=False (tests, management commands) the figures are written at
once by the caller instead.

Each request on such an alias (and each shadow's scoring of a copy) adds to a small in-memory
sum per (alias, version, role, minute); a background thread per process adds those sums to the
`TrafficMinute` rows every FLUSH_SECONDS. The database sees one upsert per version and minute
and process, not one write per request, so the figures scale with the number of versions, not
with the request rate. Latency is kept as a histogram over LATENCY_BOUNDS_MS, from which the
page reads percentiles (the upper bound of the bucket holding them).
"""

import atexit
import bisect
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction

from serving.models import TrafficMinute

logger = logging.getLogger(__name__)

LATENCY_BOUNDS_MS = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
FLUSH_SECONDS = 2.0

Key = tuple[int, int, str, int]  # alias id, version id, role, minute (epoch seconds)


@dataclass
class Sums:
    requests: int = 0
    rows: int = 0
    errors: int = 0
    drops: int = 0
    latency_sum_ms: float = 0.0
    latency_max_ms: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    compared_rows: int = 0
    agreed_rows: int = 0
    abs_diff_sum: float = 0.0


_sums: dict[Key, Sums] = {}
_lock = threading.Lock()
_thread: threading.Thread | None = None


def record(
    *,
    alias_id: int,
    version_id: int,
    role: str,
    ok: bool = True,
    requests: int = 1,
    rows: int = 0,
    latency_ms: float | None = None,
    compared_rows: int = 0,
    agreed_rows: int = 0,
    abs_diff_sum: float = 0.0,
    dropped: bool = False,
) -> None:
    """Add `requests` answered (or shadow copies scored together, `latency_ms` each), or one
    dropped shadow copy, to this minute's figures."""
    minute = int(time.time()) // 60 * 60
    key = (alias_id, version_id, role, minute)
    with _lock:
        sums = _sums.get(key)
        if sums is None:
            sums = _sums[key] = Sums()
        if dropped:
            sums.drops += 1
        else:
            sums.requests += requests
            sums.rows += rows
            sums.errors += 0 if ok else requests
            sums.compared_rows += compared_rows
            sums.agreed_rows += agreed_rows
            sums.abs_diff_sum += abs_diff_sum
            if latency_ms is not None:
                sums.latency_sum_ms += latency_ms * requests
                sums.latency_max_ms = max(sums.latency_max_ms, latency_ms)
                sums.buckets[bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)] += requests
    if not settings.MLPLATFORM_LOG_BACKGROUND:
        flush()  # as the prediction log: written at once (tests, management commands)
        return
    _ensure_thread()


def flush() -> int:
    """Add the figures gathered so far to the database, in the caller's thread. Returns the
    number of rows touched."""
    global _sums
    with _lock:
        taken, _sums = _sums, {}
    for key, sums in taken.items():
        try:
            _add(key, sums)
        except DatabaseError:
            # Figures are best effort: a failed write must not take the server down with it.
            logger.exception("could not record traffic figures %s", key)
    return len(taken)


def _add(key: Key, sums: Sums) -> None:
    alias_id, version_id, role, minute = key
    with transaction.atomic():
        row, _ = TrafficMinute.objects.select_for_update().get_or_create(
            alias_id=alias_id,
            version_id=version_id,
            role=role,
            minute=datetime.fromtimestamp(minute, tz=UTC),
        )
        row.requests += sums.requests
        row.rows += sums.rows
        row.errors += sums.errors
        row.drops += sums.drops
        row.latency_sum_ms += sums.latency_sum_ms
        row.latency_max_ms = max(row.latency_max_ms, sums.latency_max_ms)
        old = list(row.latency_buckets or []) + [0] * len(sums.buckets)
        row.latency_buckets = [old[i] + count for i, count in enumerate(sums.buckets)]
        row.compared_rows += sums.compared_rows
        row.agreed_rows += sums.agreed_rows
        row.abs_diff_sum += sums.abs_diff_sum
        row.save()


def _run() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        if not _sums:
            continue
        close_old_connections()
        flush()
        connection.close()  # this thread's connection is not kept between flushes


def _ensure_thread() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _lock:
        if _thread is None or not _thread.is_alive():
            # Started lazily, so each gunicorn worker (forked after import) gets its own thread.
            _thread = threading.Thread(target=_run, name="traffic-figures", daemon=True)
            _thread.start()


def percentile_ms(buckets: list[int], share: float, *, maximum: float) -> float | None:
    """The latency below which `share` of the requests fall, read from a histogram: the upper
    bound of the bucket that holds it (the largest latency seen for the last, open bucket)."""
    total = sum(buckets)
    if total == 0:
        return None
    needed = share * total
    running = 0
    for index, count in enumerate(buckets):
        running += count
        if running >= needed and count:
            if index < len(LATENCY_BOUNDS_MS):
                return min(float(LATENCY_BOUNDS_MS[index]), maximum)
            return maximum
    return maximum


atexit.register(flush)
