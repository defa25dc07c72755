"""The real web server for tests that need one: gunicorn with the project's config, serving the
test database."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def gunicorn_server(name: str, **env_overrides: str) -> Iterator[tuple[str, int]]:
    """Starts gunicorn (`mlplatform/gunicorn.py`, as `make run` does) with these env vars;
    yields its base URL and port once /healthz answers, and stops it after."""
    port = free_port()
    env = os.environ.copy()
    env.update(
        DJANGO_SETTINGS_MODULE="mlplatform.settings.test",
        MLPLATFORM_USE_TEST_DATABASE="1",
        PORT=str(port),
        **env_overrides,
    )
    log = (Path(settings.VAR_DIR) / f"gunicorn-{name}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "mlplatform.wsgi", "-c", "python:mlplatform.gunicorn"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=5).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not start")
        yield base, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
