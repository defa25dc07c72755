"""As-of staging: join the version's features, point in time, onto an entity file before a
batch job is planned; the staged Parquet file is what the chunks then read."""

import os
import tempfile
from contextlib import suppress
from pathlib import Path

import pyarrow.parquet as pq

from batch import storage
from batch.models import BatchJob, FileFormat
from features import offline, training_sets
from features.models import Feature
from mlplatform.errors import ApplicationError


def as_of_stage(batch: BatchJob) -> None:
    """Join the version's features, point in time, onto the entity file (DuckDB, out of core)
    and make the result the Parquet file the chunks read."""
    service_id = batch.version.feature_service_id
    if service_id is None:
        raise ApplicationError(f"{batch.version} is no longer linked to a feature service.")
    features = list(Feature.objects.filter(services__id=service_id).select_related("group__entity"))
    handle, local_path = tempfile.mkstemp(suffix=".parquet", prefix="mlp-asof-")
    os.close(handle)
    try:
        with offline.local_paths([batch.job.input.name]) as paths:
            training_sets.build(
                features=features,
                output=Path(local_path),
                fmt="parquet",
                entity_file=Path(paths[0]),
            )
        columns = list(pq.read_schema(local_path).names)
        stored = storage.store(local_path, f"jobs/inputs/job-{batch.pk}-as-of.parquet")
    finally:
        with suppress(FileNotFoundError):
            os.remove(local_path)
    batch.staged_input = stored
    batch.input_format = FileFormat.PARQUET
    batch.columns = columns
    batch.save(update_fields=["staged_input", "input_format", "columns"])
