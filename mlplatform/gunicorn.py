"""gunicorn settings, from the same env vars on every platform (Procfile, Docker, k8s)."""

import os

bind = f"{os.environ.get('WEB_BIND', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "1"))
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
