"""What the benchmarks share: a fresh Django with its own var directory, and gunicorn as users
run it (the project's config and its default worker and thread counts)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup(var: Path, **env: str) -> None:
    """Django on an empty `var` (its own SQLite database, media and broker), migrated, with
    DEBUG off and `env` set first."""
    shutil.rmtree(var, ignore_errors=True)
    (var / "static").mkdir(parents=True)  # no collected static files; saves a warning
    os.environ["MLPLATFORM_VAR_DIR"] = str(var)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings.local")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gunicorn(app: str, env: dict[str, str], *, var: Path) -> tuple[subprocess.Popen, int]:
    """gunicorn serving `app` with mlplatform/gunicorn.py, started in its own session (stop it
    with `os.killpg`); returns the process and its port once it accepts connections."""
    port = free_port()
    full = {**os.environ, **env, "PORT": str(port)}
    for name in ("WEB_CONCURRENCY", "WEB_THREADS"):  # the config's defaults, as users run it
        full.pop(name, None)
    log = (var / f"gunicorn-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--config", "python:mlplatform.gunicorn"],
        cwd=ROOT,
        env=full,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"gunicorn {app} did not start; see {log.name}")


def stop(process: subprocess.Popen) -> None:
    """Stops a server started by `gunicorn` (its whole process group)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
