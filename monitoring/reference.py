"""Reference profiles: the baseline each version's live traffic is compared with.

A version's reference comes from, in order of precedence:
- a file of input rows the user uploads (`reference_upload`; it is never replaced
  automatically);
- else the rows of an evaluation dataset it was evaluated on (`reference_from_dataset`, in a
  monitoring job queued when an evaluation finishes; the profile then names the dataset in
  `profile["dataset"]`, and a later evaluation on it does not profile it again); for a
  dataset built from a feature service that is the training set built point in time, and the
  profile says `training_set`;
- else, when a version becomes ready and its model has a ready evaluation dataset, that dataset,
  profiled by a monitoring job (`reference_job_request` / `reference_job_run`).

At most `MAX_PROFILE_ROWS` rows are profiled (a uniform sample of larger files, fixed seed), and
`SAMPLE_ROWS` of them are kept as Parquet in `ReferenceProfile.sample` (columns `in__<input>`,
`out__<output>` and `target` when given) for the KS test.
"""

import io
import logging
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.core.files.base import ContentFile
from django.db import transaction

from jobs import services as job_services
from jobs.models import Job
from mlplatform.errors import ApplicationError, ConflictError
from mlplatform.tasks import enqueue_after_commit
from monitoring import profiles, reference_tasks
from monitoring.models import ReferenceProfile
from registry.models import ModelVersion
from rollout import datasets, evaluation
from rollout import selectors as rollout_selectors
from rollout.models import EvaluationDataset

logger = logging.getLogger(__name__)

MAX_PROFILE_ROWS = 200_000
SAMPLE_ROWS = 20_000
SEED = 0


def reference_profile(version: ModelVersion) -> ReferenceProfile | None:
    """The version's reference profile, if it has one."""
    return ReferenceProfile.objects.filter(version=version).first()


def reference_sample(reference: ReferenceProfile) -> pd.DataFrame | None:
    """The stored sample of the reference rows (None when it has none or it is gone)."""
    if not reference.sample.name:
        return None
    try:
        with reference.sample.open("rb") as handle:
            return pq.read_table(io.BytesIO(handle.read())).to_pandas()
    except (OSError, pa.ArrowException):
        logger.warning("the reference sample %s cannot be read", reference.sample.name)
        return None


def _version_check(version: ModelVersion) -> None:
    if version.status != ModelVersion.Status.READY:
        raise ConflictError(
            f"{version.model.name} v{version.version} is {version.status}; only a ready "
            "version has a reference profile."
        )


def _bounded(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame.reset_index(drop=True)
    return frame.sample(n=limit, random_state=SEED).sort_index().reset_index(drop=True)


def reference_build(
    *,
    version: ModelVersion,
    frame: pd.DataFrame,
    source: str,
    target_column: str = "",
    user: Any = None,
    dataset_id: int | None = None,
) -> ReferenceProfile:
    """Profile `frame`'s rows (inputs, and the version's outputs for them) as the version's
    reference, replacing the one it had.

    Raises:
        ConflictError: the version is not ready. ApplicationError: an input column missing,
            no row with every input, or a value the model refuses (naming the row).
    """
    _version_check(version)
    inputs = version.signature.column_names
    missing = [name for name in inputs if name not in frame.columns]
    if missing:
        raise ApplicationError(
            f"file: missing the model's input column(s) {', '.join(missing)}.",
            extra={"field": "file", "missing": missing},
        )
    if target_column and target_column not in frame.columns:
        raise ApplicationError(
            f"target_column: {target_column!r} is not a column of the file.",
            extra={"field": "target_column"},
        )
    frame = _bounded(frame, MAX_PROFILE_ROWS)
    complete = frame[inputs].notna().all(axis=1).to_numpy()
    if not complete.any():
        raise ApplicationError(
            "file: no row has a value in every input column; the model cannot score any.",
            extra={"field": "file"},
        )
    scored = frame.loc[complete].reset_index(drop=True)
    outputs = profiles.outputs_score(version, scored)
    profile = profiles.profile_make(version, frame[inputs], outputs)
    if dataset_id is not None:
        profile["dataset"] = dataset_id  # the evaluation dataset it was taken from
    sample = _sample_bytes(version, scored, outputs, target_column=target_column)
    return _store(
        version=version, source=source, rows=len(frame), profile=profile, sample=sample, user=user
    )


def _sample_bytes(
    version: ModelVersion,
    scored: pd.DataFrame,
    outputs: pd.DataFrame,
    *,
    target_column: str,
) -> bytes:
    """≤ SAMPLE_ROWS of the scored rows as Parquet: numbers as float64, text as strings."""
    picked = np.arange(len(scored))
    if len(picked) > SAMPLE_ROWS:
        picked = np.sort(np.random.default_rng(SEED).choice(len(scored), SAMPLE_ROWS, False))
    columns: dict[str, pd.Series] = {}
    for name, kind in profiles.input_kinds(version).items():
        columns[f"in__{name}"] = _typed(scored[name].iloc[picked], kind)
    kinds = profiles.output_kinds(version)
    for name in outputs.columns:
        columns[f"out__{name}"] = _typed(outputs[name].iloc[picked], kinds.get(name, "numeric"))
    if target_column:
        columns["target"] = _typed(scored[target_column].iloc[picked], "categorical")
    buffer = io.BytesIO()
    pd.DataFrame(columns).to_parquet(buffer, index=False)
    return buffer.getvalue()


def _typed(values: pd.Series, kind: str) -> pd.Series:
    values = values.reset_index(drop=True)
    if kind == "numeric":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    return values.astype(object).map(lambda v: None if pd.isna(v) else str(v))


def _store(
    *,
    version: ModelVersion,
    source: str,
    rows: int,
    profile: dict[str, Any],
    sample: bytes,
    user: Any,
) -> ReferenceProfile:
    """Save the profile and its sample file; the replaced sample file is deleted after the
    commit, a new one is deleted if the save fails."""
    with transaction.atomic():
        found = ReferenceProfile.objects.select_for_update().filter(version=version).first()
        reference = found or ReferenceProfile(version=version)
        previous = reference.sample.name if found is not None else ""
        reference.source = source
        reference.rows = rows
        reference.profile = profile
        reference.created_by = user if getattr(user, "is_authenticated", False) else None
        reference.sample.save(
            f"{version.model_id}-{version.version}.parquet", ContentFile(sample), save=False
        )
        stored = reference.sample.name
        try:
            reference.save()
        except BaseException:
            reference.sample.storage.delete(stored)
            raise
        if previous and previous != stored:
            storage = reference.sample.storage
            transaction.on_commit(lambda: storage.delete(previous))
    return reference


def reference_upload(
    *, version: ModelVersion, stream: IO[bytes], target_column: str = "", user: Any = None
) -> ReferenceProfile:
    """An uploaded CSV or Parquet file of input rows (optionally with the target) as the
    version's reference.

    Raises:
        ApplicationError: empty, garbled or ragged file; an input column missing; a value the
            model refuses. Nothing is stored then. ConflictError: the version is not ready.
    """
    _version_check(version)
    target_column = (target_column or "").strip()
    with datasets.workspace() as folder:
        path = datasets.entity_upload(stream, folder)
        frame = datasets.read_frame(path)
        frame.columns = [str(c) for c in frame.columns]
        return reference_build(
            version=version,
            frame=frame,
            source=ReferenceProfile.Source.UPLOAD,
            target_column=target_column,
            user=user,
        )


def _dataset_frame(dataset: EvaluationDataset, columns: list[str]) -> pd.DataFrame:
    if not dataset.file.name:
        raise ApplicationError(f"Dataset #{dataset.pk} has no file.")
    with evaluation.local_file(dataset.file.name) as path:
        return _parquet_read(Path(path), columns)


def _parquet_read(path: Path, columns: list[str]) -> pd.DataFrame:
    parquet = pq.ParquetFile(path)
    present = set(parquet.schema_arrow.names)
    wanted = [c for c in columns if c in present]
    total = int(parquet.metadata.num_rows)
    if total <= MAX_PROFILE_ROWS:
        return parquet.read(columns=wanted).to_pandas()
    # A uniform sample of a large dataset, read one row group at a time.
    keep = np.zeros(total, dtype=bool)
    keep[np.random.default_rng(SEED).choice(total, MAX_PROFILE_ROWS, replace=False)] = True
    parts, offset = [], 0
    for batch in parquet.iter_batches(batch_size=100_000, columns=wanted):
        mask = keep[offset : offset + batch.num_rows]
        offset += batch.num_rows
        parts.append(batch.to_pandas()[mask])
    return pd.concat(parts, ignore_index=True)


def reference_from_dataset(
    *, version: ModelVersion, dataset: EvaluationDataset
) -> ReferenceProfile | None:
    """Profile an evaluation dataset's rows as the version's reference, unless it has an
    uploaded one (then None).

    Raises:
        ApplicationError: the dataset does not fit the version.
    """
    current = reference_profile(version)
    if current is not None and current.source == ReferenceProfile.Source.UPLOAD:
        return None
    inputs = version.signature.column_names
    frame = _dataset_frame(dataset, [*inputs, dataset.label_column])
    source = (
        ReferenceProfile.Source.TRAINING_SET
        if dataset.source == EvaluationDataset.Source.FEATURE_SERVICE
        else ReferenceProfile.Source.EVALUATION
    )
    label = dataset.label_column if dataset.label_column in frame.columns else ""
    return reference_build(
        version=version, frame=frame, source=source, target_column=label, dataset_id=dataset.pk
    )


def dataset_for(version: ModelVersion) -> EvaluationDataset | None:
    """The dataset a new version's reference is taken from: its model's gate's dataset, else
    the newest ready dataset holding every input column of the version."""
    gate = rollout_selectors.gate_of(model=version.model)
    candidates = list(
        rollout_selectors.dataset_list(model=version.model).filter(
            status=EvaluationDataset.Status.READY
        )
    )
    if gate is not None:
        candidates.insert(0, gate.dataset)
    inputs = set(version.signature.column_names)
    for dataset in candidates:
        if dataset.status == EvaluationDataset.Status.READY and inputs <= set(dataset.columns):
            return dataset
    return None


def reference_job_request(*, version: ModelVersion, dataset: EvaluationDataset) -> Job:
    """Queue a monitoring job that profiles `dataset` as the version's reference."""
    model = version.model
    with transaction.atomic():
        job = job_services.job_create(
            kind=Job.Kind.MONITORING,
            description=f"Reference profile of {model.name} v{version.version} from {dataset.name}",
            owner=model.owner,
            total=dataset.rows,
            params={
                "model": model.name,
                "version": version.version,
                "dataset": dataset.pk,
                "reference": True,
            },
        )
        enqueue_after_commit(reference_tasks.reference_build, job.pk)
    return job


def reference_job_run(*, job_id: int) -> None:
    """The worker's side of `reference_job_request`."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status in Job.FINISHED:
        return
    params = job.params or {}
    with job_services.job_running(job_id=job_id) as running:
        if running is None:
            return
        version = (
            ModelVersion.objects.select_related("model")
            .filter(
                model__name=str(params.get("model", "")), version=int(params.get("version") or 0)
            )
            .first()
        )
        dataset = EvaluationDataset.objects.filter(pk=int(params.get("dataset") or 0)).first()
        if version is None or dataset is None:
            raise ApplicationError("The version or the dataset was deleted before its turn.")
        built = reference_from_dataset(version=version, dataset=dataset)
        result: dict[str, Any] = {"rows": built.rows if built else 0}
        if built is None:
            result["skipped"] = "the version has an uploaded reference"
        job_services.job_succeed(job_id=job_id, result=result)
