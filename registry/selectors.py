"""Reads for the registry."""

from typing import Any

from registry import artifacts
from registry.models import ModelVersion


def estimator_load(*, version: ModelVersion) -> Any:
    """Load a ready version's estimator, re-checking its sha256.

    Raises:
        artifacts.ArtifactIntegrityError: the stored bytes changed since upload.
        artifacts.ArtifactLoadError: the artifact cannot be deserialised.
    """
    if version.status != ModelVersion.Status.READY:
        raise artifacts.ArtifactLoadError(f"{version} is {version.status}, not ready.")
    trusted = version.signature.get("trusted_types", []) if version.signature else []
    with version.artifact.open("rb") as stream:
        return artifacts.load_verified(
            stream=stream, expected_sha256=version.sha256, fmt=version.format, trusted_types=trusted
        )
