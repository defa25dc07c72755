"""Real Celery worker processes for the test suite (never an in-process or eager worker)."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings

READY_MARK = "ready."


class WorkerProcess:
    """A `celery worker` subprocess on the configured broker, reading the test database."""

    def __init__(
        self, *, name: str | None = None, concurrency: int = 1, extra_env: dict | None = None
    ):
        self.name = name or f"test-{uuid.uuid4().hex[:8]}"
        self.concurrency = concurrency
        self.extra_env = extra_env or {}
        log_dir = Path(settings.VAR_DIR) / "worker-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{self.name}.log"
        self.process: subprocess.Popen | None = None

    def start(self, *, timeout: float = 60) -> "WorkerProcess":
        env = os.environ.copy()
        env.update(
            DJANGO_SETTINGS_MODULE="mlplatform.settings.test",
            MLPLATFORM_USE_TEST_DATABASE="1",
            MLPLATFORM_BROKER_POLL_SECONDS="0.05",
            PYTHONUNBUFFERED="1",
            **self.extra_env,
        )
        self.log_path.write_text("")
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mlplatform",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.concurrency}",
                "--pool=prefork",
                "-n",
                f"{self.name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() takes the pool children too
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            if READY_MARK in self.log():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, *, timeout: float = 30) -> None:
        if not self.process or self.process.poll() is not None:
            return
        self.process.terminate()  # warm shutdown: the main process stops its pool children
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()


def wait_idle(*, timeout: float = 60, queue: str = "celery") -> None:
    """Wait until no task message waits in the broker queue and no worker holds one (running,
    prefetched or scheduled): nothing will then touch the database behind the test's back.

    Needs the workers' remote control (the filesystem broker's fanout folder, or Redis).
    """
    from kombu.exceptions import ChannelError

    from mlplatform.celery import app

    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        with app.connection_for_read() as connection:
            try:
                waiting = connection.default_channel.queue_declare(
                    queue=queue, passive=True
                ).message_count
            except ChannelError:
                waiting = 0  # Redis drops an emptied queue's key: "no queue" is an empty one
        inspector = app.control.inspect(timeout=1.0)
        held = [inspector.active(), inspector.reserved(), inspector.scheduled()]
        if any(replies is None for replies in held):
            # No worker answered in time (a late reply over Redis under load): this look tells
            # nothing either way, so it neither counts as quiet nor starts the count again.
            time.sleep(0.1)
            continue
        busy = waiting > 0 or any(tasks for replies in held for tasks in replies.values())
        quiet = 0 if busy else quiet + 1
        if quiet >= 2:  # twice in a row: a message taken between the two looks is seen
            return
        time.sleep(0.1)
    raise AssertionError(
        f"the workers were still busy after {timeout}s: {waiting} message(s) waiting; "
        f"active, reserved, scheduled: {held}"
    )
