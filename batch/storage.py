"""Batch scoring's files in storage: read one where it lies, store a local file, delete quietly."""

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from django.core.files import File
from django.core.files.storage import default_storage


@contextmanager
def stored(name: str) -> Iterator[Any]:
    """A stored file as a local path when storage has one (fast native reads), else a stream."""
    try:
        path = default_storage.path(name)
    except NotImplementedError:
        with default_storage.open(name, "rb") as stream:
            yield stream
        return
    yield path


class _MovableFile(File):
    """Lets FileSystemStorage move the temporary file into place instead of copying it."""

    def temporary_file_path(self) -> str:
        return str(self.name)


def store(local_path: str, name: str) -> str:
    with open(local_path, "rb") as handle:
        stored = default_storage.save(name, _MovableFile(handle, name=local_path))
    with suppress(FileNotFoundError):
        os.remove(local_path)
    return stored


def delete_quietly(names: list[str]) -> None:
    for name in names:
        with suppress(OSError):
            default_storage.delete(name)
