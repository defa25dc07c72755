"""Sending Celery tasks from services: after the transaction commits, never before."""

import logging
from typing import Any

from celery import Task
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_after_commit(
    task: Task, *args: Any, countdown: float | None = None, **options: Any
) -> None:
    """Send `task(*args)` once the current transaction commits (at once outside one).

    A worker must see the rows the task's ids name, so the message leaves only after the commit;
    a rolled-back transaction sends nothing. `options` go to `apply_async` (e.g. `time_limit`).

    The send is robust: a broker that is down at that moment is logged, not raised. The work is
    committed either way, and an error response would only invite a retry that duplicates it.
    Batch scoring and model validation have sweepers that send lost messages again; a feature
    job whose message was lost stays queued, where a person sees it and can cancel it.
    """
    if countdown:
        options["countdown"] = countdown

    def send() -> None:
        task.apply_async(args=args, **options)

    transaction.on_commit(send, robust=True)
