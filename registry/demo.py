"""Demo content loaded by `python manage.py demo` (idempotent)."""

from collections.abc import Iterator
from typing import Any


def demo_load(*, user: Any) -> Iterator[str]:
    yield from ()
