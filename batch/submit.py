"""Submitting a batch scoring job: check the input against the pinned version, store it, queue
the plan. Nothing is created when a check fails."""

import os
from collections.abc import Sequence
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.db import transaction

from batch import inputs, tasks
from batch.models import BatchJob, FileFormat
from jobs import services as job_services
from jobs.models import Job
from mlplatform.errors import ApplicationError
from mlplatform.tasks import enqueue_after_commit
from registry.models import ModelVersion


def batch_job_submit(
    *,
    version: ModelVersion,
    stream: IO[bytes],
    filename: str,
    outputs: Sequence[str] = ("predict",),
    id_columns: Sequence[str] = (),
    output_format: str = FileFormat.CSV,
    submitted_by: Any = None,
    stored_name: str | None = None,
    schedule: Any = None,
    as_of: bool = False,
) -> Job:
    """Check an input against a version and queue a batch scoring job for it.

    The file is streamed to storage (or, with `stored_name`, scored where it already is).

    Raises:
        ApplicationError: unreadable input, columns that do not match the signature, an output
            the model cannot produce. Nothing is created then.
    """
    if as_of and not version.feature_service_id:
        raise ApplicationError(
            f"as_of: {version.model.name} version {version.version} is not linked to a feature "
            "service, so there are no features to look up as of a time.",
            extra={"field": "as_of"},
        )
    info = inputs.input_inspect(stream=stream, filename=filename)
    check = inputs.columns_check(
        version=version, columns=info.columns, id_columns=id_columns, as_of=as_of
    )
    if not check.ok:
        raise ApplicationError(
            check.message(),
            extra={"field": "input", "missing": check.missing, "extra": check.extra},
        )
    clashes = [name for name in id_columns if name == "prediction" or name.startswith("proba_")]
    if clashes:
        raise ApplicationError(
            f"id_columns: {', '.join(clashes)} would clash with the output's own columns.",
            extra={"field": "id_columns"},
        )
    if "predict_proba" in outputs and not version.signature.has_predict_proba:
        raise ApplicationError(
            f"outputs: {version.model.name} version {version.version} has no predict_proba; "
            "ask for 'predict' only.",
            extra={"field": "outputs"},
        )
    description = (
        f"Score {os.path.basename(filename)[:150]} with {version.model.name} v{version.version}"
    )
    with transaction.atomic():
        job = job_services.job_create(
            kind=Job.Kind.BATCH_SCORING,
            description=description,
            submitted_by=submitted_by,
            owner=getattr(schedule, "owner", None),  # a schedule's runs are its team's
            params={
                "model": version.model.name,
                "version": version.version,
                "input_name": os.path.basename(filename),
                "outputs": list(outputs),
                "id_columns": list(id_columns),
                "format": output_format,
                "as_of": as_of,
            },
        )
        if stored_name:
            job.input.name = stored_name
        else:
            extension = "parquet" if info.format == FileFormat.PARQUET else "csv"
            # Server-chosen name; File() streams the (spooled) upload in chunks.
            job.input.save(f"job-{job.pk}.{extension}", File(stream), save=False)
        job.save(update_fields=["input", "updated_at"])
        BatchJob.objects.create(
            job=job,
            version=version,
            input_format=info.format,
            output_format=output_format,
            outputs=list(outputs),
            id_columns=list(id_columns),
            columns=info.columns,
            chunk_rows=max(1, int(settings.MLPLATFORM_BATCH_CHUNK_ROWS)),
            lease_seconds=max(1, int(settings.MLPLATFORM_BATCH_LEASE_SECONDS)),
            max_attempts=max(1, int(settings.MLPLATFORM_BATCH_MAX_ATTEMPTS)),
            schedule=schedule,
            as_of=as_of,
        )
        enqueue_after_commit(tasks.batch_job_plan, job.pk)
    return job
