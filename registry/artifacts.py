"""The only module that deserialises model artifacts.

Loading a pickle runs code, so nothing here is called on an artifact that has not passed
`registry.scanning` (the validation pipeline guarantees it: only `ready` versions are served),
and every load re-checks the sha256 recorded at upload.
"""

import hashlib
import io
import pickle
import warnings
from collections.abc import Iterable
from typing import IO, Any

import joblib

CHUNK = 1024 * 1024


class ArtifactIntegrityError(Exception):
    """The stored bytes no longer match the sha256 recorded at upload."""


class ArtifactLoadError(Exception):
    """The artifact could not be deserialised."""


def sha256_of(stream: IO[bytes]) -> str:
    """Stream a file through sha256 without holding it in memory."""
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


def load_bytes(data: bytes, *, fmt: str, trusted_types: Iterable[str] = ()) -> Any:
    """Deserialise an artifact already read into memory (after scanning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if fmt == "skops":
                import skops.io as sio  # imported on use: it is slow to import

                return sio.loads(data, trusted=list(trusted_types))
            if fmt == "joblib":
                return joblib.load(io.BytesIO(data))
            if fmt == "pickle":
                return pickle.loads(data)
        except Exception as exc:
            raise ArtifactLoadError(f"{exc.__class__.__name__}: {exc}") from exc
        finally:
            _remember_version_warnings(caught)
    raise ArtifactLoadError(f"Unknown artifact format {fmt!r}.")


_last_version_warnings: list[str] = []


def _remember_version_warnings(caught: list[warnings.WarningMessage]) -> None:
    _last_version_warnings.clear()
    for item in caught:
        original = getattr(item.message, "original_sklearn_version", None)
        if original:
            _last_version_warnings.append(str(original))


def trained_sklearn_version() -> str | None:
    """The scikit-learn version the last loaded estimator says it was saved with, if it differs."""
    return _last_version_warnings[0] if _last_version_warnings else None


def load_verified(
    *, stream: IO[bytes], expected_sha256: str, fmt: str, trusted_types: Iterable[str] = ()
) -> Any:
    """Read, verify the sha256, then deserialise. Raises ArtifactIntegrityError on mismatch."""
    data = stream.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"Artifact sha256 is {actual}, expected {expected_sha256}: the stored file was "
            "modified after upload; refusing to load it."
        )
    return load_bytes(data, fmt=fmt, trusted_types=trusted_types)
