"""Writes for rollout: evaluation datasets, gates, evaluations."""

import logging
import time
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.db import transaction

from features import online
from jobs import services as job_services
from jobs.models import Job
from mlplatform.errors import ApplicationError, ConflictError, NotFoundError
from mlplatform.tasks import enqueue_after_commit
from registry.models import ModelAlias, ModelVersion, RegisteredModel
from rollout import datasets, evaluation, rules, selectors, signals, tasks
from rollout.models import Evaluation, EvaluationDataset, Gate
from tenancy.services import read_check

logger = logging.getLogger(__name__)


def _inputs(model: RegisteredModel) -> list[str]:
    """The input columns of the model's latest ready version (none yet: nothing to check)."""
    version = selectors.latest_ready(model=model)
    return list(version.signature.column_names) if version is not None else []


def _name(name: str, default: str) -> str:
    name = (name or "").strip()[:200]
    return name or default[:200]


def dataset_upload(
    *,
    model: RegisteredModel,
    stream: IO[bytes],
    label_column: str,
    name: str = "",
    filename: str = "",
    user: Any = None,
) -> EvaluationDataset:
    """A labelled CSV or Parquet upload, checked and stored as the model's evaluation dataset.

    Raises:
        ApplicationError: empty, garbled or ragged file; no such label column; the model's input
            columns missing (named). Nothing is stored then.
    """
    label_column = (label_column or "").strip()
    if not label_column:
        raise ApplicationError("label_column: required.", extra={"field": "label_column"})
    with datasets.workspace() as folder:
        table = datasets.upload_read(
            stream, folder, label_column=label_column, inputs=_inputs(model)
        )
        return _dataset_store(
            model=model,
            table=table,
            name=_name(name, filename or f"upload of {table.rows} rows"),
            label_column=label_column,
            user=user,
        )


def _dataset_store(
    *,
    model: RegisteredModel,
    table: datasets.Table,
    name: str,
    label_column: str,
    user: Any,
    feature_service: str = "",
) -> EvaluationDataset:
    dataset = EvaluationDataset(
        model=model,
        name=name,
        label_column=label_column,
        rows=table.rows,
        columns=table.columns,
        source=(
            EvaluationDataset.Source.FEATURE_SERVICE
            if feature_service
            else EvaluationDataset.Source.UPLOAD
        ),
        feature_service=feature_service,
        status=EvaluationDataset.Status.READY,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    with table.path.open("rb") as stream:
        dataset.file.save("dataset.parquet", File(stream), save=False)
    stored = dataset.file.name
    try:
        dataset.save()
    except BaseException:
        dataset.file.storage.delete(stored)
        raise
    return dataset


def dataset_from_features(
    *,
    model: RegisteredModel,
    feature_service: str,
    label_column: str,
    entity_stream: IO[bytes] | None = None,
    entity_reference: str = "",
    name: str = "",
    user: Any = None,
) -> EvaluationDataset:
    """An evaluation dataset built point in time from a feature service and an entity file
    (keys, `event_timestamp`, the label): inline when small, else as a job (the dataset says
    `building` until it is done).

    Raises:
        ApplicationError: unknown service, unreadable entity file, no label column, the model's
            inputs not among the columns. PermissionDeniedError: a feature group the user may
            not read. NotFoundError: the referenced file does not exist.
    """
    label_column = (label_column or "").strip()
    if not label_column:
        raise ApplicationError("label_column: required.", extra={"field": "label_column"})
    features = online.features_resolve(feature_service=feature_service)
    if user is not None:
        for group in {feature.group for feature in features}:
            read_check(user=user, obj=group)
    inputs = _inputs(model)
    with datasets.workspace() as folder:
        if entity_stream is not None:
            entities = datasets.entity_upload(entity_stream, folder)
        elif entity_reference:
            entities = datasets.entity_stored(entity_reference, team=model.owner, folder=folder)
        else:
            raise ApplicationError(
                "entity_file: give the entity file (multipart `file`) or its path.",
                extra={"field": "entity_file"},
            )
        datasets.entity_check(entities, label_column=label_column)
        count = datasets.entity_rows(entities)
        name = _name(name, f"{feature_service} ({count} rows)")
        if count <= int(settings.MLPLATFORM_INLINE_TRAINING_SET_ROWS):
            table = datasets.training_set(
                features=features,
                entities=entities,
                folder=folder,
                label_column=label_column,
                inputs=inputs,
            )
            return _dataset_store(
                model=model,
                table=table,
                name=name,
                label_column=label_column,
                user=user,
                feature_service=feature_service,
            )
        with transaction.atomic():
            job = job_services.job_create(
                kind=Job.Kind.TRAINING_SET,
                description=f"Evaluation dataset {name} for {model.name}",
                submitted_by=user,
                owner=model.owner,
                total=count,
                params={"model": model.name, "feature_service": feature_service},
            )
            with entities.open("rb") as stream:
                job.input.save(f"entities-{job.pk}.data", File(stream), save=True)
            dataset = EvaluationDataset.objects.create(
                model=model,
                name=name,
                label_column=label_column,
                source=EvaluationDataset.Source.FEATURE_SERVICE,
                feature_service=feature_service,
                status=EvaluationDataset.Status.BUILDING,
                job=job,
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
            job.params = {**job.params, "dataset": dataset.pk}
            job.save(update_fields=["params"])
            enqueue_after_commit(tasks.dataset_build, dataset.pk)
        return dataset


def dataset_build_job(*, dataset_id: int) -> None:
    """Build a `building` dataset's training set in its job (the worker's side); a dataset
    whose job fails or is cancelled says `failed` with the job's error."""
    dataset = EvaluationDataset.objects.select_related("model").filter(pk=dataset_id).first()
    if dataset is None or dataset.job_id is None or dataset.status != dataset.Status.BUILDING:
        return
    job_id = dataset.job_id
    try:
        with job_services.job_running(job_id=job_id) as job:
            if job is None:
                return
            features = online.features_resolve(feature_service=dataset.feature_service)
            with datasets.workspace() as folder:
                entities = folder / "entities"
                with job.input.open("rb") as source, entities.open("wb") as sink:
                    for chunk in iter(lambda: source.read(1024 * 1024), b""):
                        sink.write(chunk)
                table = datasets.training_set(
                    features=features,
                    entities=entities,
                    folder=folder,
                    label_column=dataset.label_column,
                    inputs=_inputs(dataset.model),
                    job_id=job_id,
                )
                with table.path.open("rb") as stream:
                    dataset.file.save("dataset.parquet", File(stream), save=False)
            stored = dataset.file.name
            try:
                with transaction.atomic():
                    job_services.job_lock_running(job_id=job_id)
                    EvaluationDataset.objects.filter(pk=dataset.pk).update(
                        file=stored,
                        rows=table.rows,
                        columns=table.columns,
                        status=EvaluationDataset.Status.READY,
                        message="",
                    )
                    job_services.job_succeed(job_id=job_id, result={"rows": table.rows})
            except BaseException:
                dataset.file.storage.delete(stored)
                raise
    finally:
        ended = Job.objects.filter(pk=job_id).first()
        EvaluationDataset.objects.filter(
            pk=dataset.pk, status=EvaluationDataset.Status.BUILDING
        ).update(
            status=EvaluationDataset.Status.FAILED,
            message=(ended.error if ended and ended.error else "Its job did not finish.")[:5000],
        )


def dataset_delete(*, dataset: EvaluationDataset) -> None:
    """Delete a dataset, its evaluations and (after the commit) its file.

    Raises:
        ConflictError: the model's gate uses it.
    """
    if Gate.objects.filter(dataset=dataset).exists():
        raise ConflictError(
            f"dataset: {dataset.name} (#{dataset.pk}) is the gate's dataset; change or delete "
            "the gate first.",
            extra={"field": "dataset"},
        )
    name = dataset.file.name
    storage = dataset.file.storage
    dataset.delete()
    if name:
        transaction.on_commit(lambda: storage.delete(name))


def gate_set(*, model: RegisteredModel, dataset_id: Any, rule_texts: Any, user: Any = None) -> Gate:
    """Put the model's gate (replacing it) and queue the evaluations it needs: the gated
    aliases' versions and the ready versions without one on the dataset.

    Raises:
        ApplicationError: a bad rule (named), a metric the model's task does not measure.
        NotFoundError: no such dataset of this model. ConflictError: the dataset is not ready.
    """
    dataset = selectors.dataset_of(model=model, dataset_id=dataset_id)
    if dataset.status != EvaluationDataset.Status.READY:
        raise ConflictError(
            f"dataset: #{dataset.pk} is {dataset.status}; a gate needs a ready dataset.",
            extra={"field": "dataset"},
        )
    latest = selectors.latest_ready(model=model)
    task = None
    if latest is not None:
        try:
            task = evaluation.task_of(latest)
        except ApplicationError as exc:
            raise ApplicationError(exc.message, extra={"field": "rules"}) from exc
    parsed = rules.rules_parse(rule_texts, task=task)
    changer = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        gate, _ = Gate.objects.update_or_create(
            model=model,
            defaults={
                "dataset": dataset,
                "rules": [rule.text for rule in parsed],
                "updated_by": changer,
            },
        )
        gated = ModelAlias.objects.filter(model=model, alias__in=gated_aliases()).values_list(
            "version_id", flat=True
        )
        ready = ModelVersion.objects.filter(model=model, status=ModelVersion.Status.READY)
        for version in ready.select_related("model").order_by("-version"):
            if (
                version.pk in set(gated)
                or selectors.evaluation_latest(version=version, dataset=dataset) is None
            ):
                evaluation_ensure(version=version, dataset=dataset, user=user)
    return gate


def gate_delete(*, model: RegisteredModel) -> None:
    """Remove the model's gate. Raises NotFoundError when it has none."""
    deleted, _ = Gate.objects.filter(model=model).delete()
    if not deleted:
        raise NotFoundError(f"{model.name} has no promotion gate.")


def gated_aliases() -> list[str]:
    return [a.strip() for a in settings.MLPLATFORM_GATED_ALIASES if a.strip()]


def evaluation_request(
    *, version: ModelVersion, dataset: EvaluationDataset, user: Any = None
) -> Evaluation:
    """Queue an evaluation of a ready version on a ready dataset of its model, as a job.

    Raises:
        ConflictError: the version or the dataset is not ready. ApplicationError: another
            model's dataset.
    """
    if dataset.model_id != version.model_id:
        raise ApplicationError("dataset: a dataset of another model.", extra={"field": "dataset"})
    if version.status != ModelVersion.Status.READY:
        raise ConflictError(f"{version} is {version.status}; only ready versions are evaluated.")
    if dataset.status != EvaluationDataset.Status.READY:
        raise ConflictError(
            f"dataset: #{dataset.pk} is {dataset.status}; it cannot be evaluated on yet.",
            extra={"field": "dataset"},
        )
    evaluation.task_of(version)
    model = version.model
    with transaction.atomic():
        job = job_services.job_create(
            kind=Job.Kind.EVALUATION,
            description=f"Evaluate {model.name} v{version.version} on {dataset.name}"[:300],
            submitted_by=user,
            owner=model.owner,
            total=dataset.rows,
            params={"model": model.name, "version": version.version, "dataset": dataset.pk},
        )
        found = Evaluation.objects.create(version=version, dataset=dataset, job=job)
        enqueue_after_commit(tasks.evaluation_run, found.pk)
    return found


def evaluation_ensure(
    *, version: ModelVersion, dataset: EvaluationDataset, user: Any = None
) -> Evaluation:
    """The version's pending evaluation on the dataset, or a new one queued."""
    latest = selectors.evaluation_latest(version=version, dataset=dataset)
    if latest is not None and latest.effective_status in (
        Evaluation.Status.QUEUED,
        Evaluation.Status.RUNNING,
    ):
        return latest
    return evaluation_request(version=version, dataset=dataset, user=user)


def evaluation_run_job(*, evaluation_id: int) -> None:
    """Score the dataset with the version and store the metrics (the worker's side). An
    evaluation whose job fails or is cancelled says `failed` with the job's error."""
    found = (
        Evaluation.objects.select_related("version__model", "dataset")
        .filter(pk=evaluation_id)
        .first()
    )
    if found is None or found.job_id is None or found.status == Evaluation.Status.SUCCEEDED:
        return
    job_id = found.job_id
    try:
        with job_services.job_running(job_id=job_id, total=found.dataset.rows) as job:
            if job is None:
                return
            Evaluation.objects.filter(pk=found.pk).update(status=Evaluation.Status.RUNNING)
            last = [0.0]

            def progress(done: int, total: int) -> None:
                now = time.monotonic()
                if now - last[0] >= 0.5 or done >= total:
                    last[0] = now
                    job_services.job_set_progress(job_id=job_id, done=done, total=total)

            if not found.dataset.file.name:
                raise ApplicationError(f"Dataset #{found.dataset_id} has no file.")
            with evaluation.local_file(found.dataset.file.name) as path:
                measured = evaluation.evaluate(
                    version=found.version,
                    path=path,
                    label_column=found.dataset.label_column,
                    progress=progress,
                )
            summary = {
                key: value
                for key, value in measured.metrics.items()
                if isinstance(value, int | float) and not isinstance(value, bool)
            }
            with transaction.atomic():
                job_services.job_lock_running(job_id=job_id)
                Evaluation.objects.filter(pk=found.pk).update(
                    status=Evaluation.Status.SUCCEEDED,
                    metrics=measured.metrics,
                    curves=measured.curves,
                    rows=measured.rows,
                    seconds=measured.seconds,
                    error="",
                )
                job_services.job_succeed(
                    job_id=job_id, result={"evaluation": found.pk, "metrics": summary}
                )
            signals.evaluation_finished.send(sender=Evaluation, evaluation=found)
    finally:
        ended = Job.objects.filter(pk=job_id).first()
        Evaluation.objects.filter(
            pk=found.pk, status__in=[Evaluation.Status.QUEUED, Evaluation.Status.RUNNING]
        ).update(
            status=Evaluation.Status.FAILED,
            error=(ended.error if ended and ended.error else "Its job did not finish.")[:10_000],
        )
