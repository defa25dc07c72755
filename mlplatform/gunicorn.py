"""gunicorn settings, from the same env vars on every platform (Procfile, Docker, k8s)."""

import gc
import os

bind = f"{os.environ.get('WEB_BIND', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads (gunicorn's gthread worker): a client that trickles its body holds one thread, not
# the worker, while the others keep answering (request_limits.py cuts the trickle off).
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
accesslog = "-"
# Each worker keeps its own model cache; preloading the app would share nothing useful.
preload_app = False


def child_exit(server: object, worker: object) -> None:
    # With several workers, /metrics aggregates files in PROMETHEUS_MULTIPROC_DIR; a dead
    # worker's live gauges (e.g. loaded models) must stop counting.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def post_worker_init(worker: object) -> None:
    """Warm this worker's models before it accepts a request, then freeze the heap.

    The app is loaded by now (in each worker: preload_app is off). The versions named by
    MLPLATFORM_PRELOAD are loaded and run once here, so no client waits for them. Then
    `gc.freeze()` moves everything alive (Django, scikit-learn, the estimators) out of the
    cyclic garbage collector's view: its full collections no longer rescan those ~250k
    long-lived objects every few hundred requests (a latency spike, and several per cent of a
    one-row prediction's average cost).
    """
    from django.apps import apps

    if apps.ready:  # not for a WSGI app without Django (the serving benchmark's baseline)
        from django.db import DatabaseError, connections

        from serving import services

        try:
            services.preload_once()
        except DatabaseError as exc:  # not migrated yet, say: the first request will tell
            worker.log.warning("model preload skipped: %s", exc)  # type: ignore[attr-defined]
        finally:
            connections.close_all()
    gc.freeze()
