"""Writes for the feature store: the catalog, ingestion, transformations, materialisation and
training sets. Every long operation is a `jobs.Job` reporting its progress."""

import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from features import (
    ingestion,
    offline,
    online,
    sources,
    tasks,
    training_sets,
    transformations,
)
from features.models import DataSource, Entity, Feature, FeatureGroup, FeatureService
from jobs import services as jobs
from jobs.models import Job
from mlplatform.errors import ApplicationError, ConflictError
from mlplatform.schedules import crontab_from_expression
from mlplatform.tasks import enqueue_after_commit
from tenancy.services import PermissionDeniedError, team_may_read

logger = logging.getLogger(__name__)

_CRON = re.compile(r"^\S+ \S+ \S+ \S+ \S+$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --- catalog ----------------------------------------------------------------------------------


def _clean_save(instance: Any) -> None:
    try:
        instance.full_clean()
        instance.save()
    except ValidationError:
        raise
    except IntegrityError as exc:
        raise ConflictError(f"{type(instance).__name__} {instance} already exists.") from exc


def _column_name(name: Any, *, what: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ApplicationError(f"{what}: {name!r} is not a valid column name (letters, digits, _).")
    return name


def entity_keys_check(join_keys: Any) -> list[str]:
    """An entity's join keys: a non-empty list of column names, none of them reserved.

    Raises:
        ApplicationError: naming the bad key.
    """
    if not isinstance(join_keys, list | tuple) or not join_keys:
        raise ApplicationError("join_keys: a non-empty list of column names is required.")
    keys = [_column_name(k, what="join_keys") for k in join_keys]
    if set(keys) & ingestion.RESERVED:
        raise ApplicationError(f"join_keys: {sorted(ingestion.RESERVED)} are reserved names.")
    return keys


def entity_create(
    *, name: str, join_keys: Sequence[str], description: str = "", owner: Group | None = None
) -> Entity:
    """Create an entity. Raises ApplicationError for bad keys, ConflictError if it exists."""
    keys = entity_keys_check(join_keys)
    if Entity.objects.filter(name=name).exists():
        raise ConflictError(f"Entity '{name}' already exists.")
    entity = Entity(name=name, join_keys=keys, description=description, owner=owner)
    _clean_save(entity)
    return entity


def entity_update(
    *,
    entity: Entity,
    description: str | None = None,
    owner: Group | None = None,
    clear_owner: bool = False,
) -> Entity:
    """Join keys are fixed once groups use them (stored data is keyed by them); only the
    description and the owning team change."""
    if description is not None:
        entity.description = description
    if clear_owner:
        entity.owner = None
    elif owner is not None:
        entity.owner = owner
    entity.save(update_fields=["description", "owner"])
    return entity


def entity_delete(*, entity: Entity) -> None:
    """Delete an entity no feature group uses.

    Raises:
        ConflictError: groups use it (their stored data is keyed by its join keys).
    """
    used = sorted(entity.groups.values_list("name", flat=True))
    if used:
        raise ConflictError(f"Entity '{entity.name}' is used by the feature groups {used}.")
    entity.delete()


def source_create(
    *,
    name: str,
    kind: str = DataSource.Kind.FILE,
    file: IO[bytes] | None = None,
    path: str = "",
    description: str = "",
    owner: Group | None = None,
) -> DataSource:
    """Create a data source: an uploaded file, a path in storage, or a SQL table.

    Raises:
        ConflictError: the name is taken. ApplicationError: see `source_check`.
    """
    if DataSource.objects.filter(name=name).exists():
        raise ConflictError(f"Data source '{name}' already exists.")
    path = source_check(kind=kind, has_file=file is not None, path=path, owner=owner)
    source = DataSource(name=name, kind=kind, path=path, description=description, owner=owner)
    if file is not None:
        # Server-chosen name: the client's file name never reaches the storage path.
        source.file.save(f"{name}-{timezone.now():%Y%m%d%H%M%S}.data", File(file), save=False)
    _clean_save(source)
    return source


def source_check(*, kind: str, has_file: bool, path: str, owner: Group | None) -> str:
    """Where a source's data comes from: a file for kind 'file', else a path in the owner's
    storage area or a SQL table that is not the platform's own; returns the normalised path.

    Raises:
        ApplicationError: naming the field.
    """
    if kind not in DataSource.Kind.values:
        raise ApplicationError(f"kind: must be one of {DataSource.Kind.values}.")
    if kind == DataSource.Kind.FILE and not has_file:
        raise ApplicationError("file: an uploaded file is required for kind 'file'.")
    if kind != DataSource.Kind.FILE and not path:
        raise ApplicationError(f"path: required for kind '{kind}'.")
    if kind == DataSource.Kind.STORAGE_PATH:
        path = sources.storage_path_check(path, owner=owner)
        if not default_storage.exists(path):
            raise ApplicationError(f"path: nothing in storage at {path!r}.")
    if kind == DataSource.Kind.SQL_TABLE:
        path = sources.sql_table_check(path)
    return path


def source_update(
    *,
    source: DataSource,
    description: str | None = None,
    owner: Group | None = None,
    clear_owner: bool = False,
) -> DataSource:
    """Change a source's description or team; where its data comes from never changes."""
    if description is not None:
        source.description = description
    if clear_owner:
        source.owner = None
    elif owner is not None:
        source.owner = owner
    source.save(update_fields=["description", "owner"])
    return source


def source_delete(*, source: DataSource) -> None:
    """Delete a source and (after commit) its uploaded file; groups built on it keep their data."""
    name = source.file.name if source.kind == DataSource.Kind.FILE else ""
    with transaction.atomic():
        source.delete()
        if name:
            transaction.on_commit(lambda: default_storage.delete(name))


def features_check(features: Any, *, keys: Sequence[str]) -> list[dict[str, Any]]:
    """New features of a group: valid, distinct column names, none a join key, an existing
    feature (`keys` holds both) or a reserved name; a known dtype; tags an object.

    Raises:
        ApplicationError: naming the feature by its index.
    """
    if not isinstance(features, list):
        raise ApplicationError("features: a list of {name, dtype, description} is required.")
    seen: set[str] = set()
    cleaned = []
    for index, item in enumerate(features):
        if not isinstance(item, dict):
            raise ApplicationError(f"features[{index}]: must be an object.")
        name = _column_name(item.get("name"), what=f"features[{index}].name")
        if name in seen or name in keys or name in ingestion.RESERVED or name.startswith("__"):
            raise ApplicationError(
                f"features[{index}].name: {name!r} repeats a feature, a join key "
                "or a reserved name."
            )
        seen.add(name)
        dtype = item.get("dtype", Feature.Dtype.FLOAT64)
        if dtype not in Feature.Dtype.values:
            raise ApplicationError(
                f"features[{index}].dtype: {dtype!r} is not one of {Feature.Dtype.values}."
            )
        tags = item.get("tags") or {}
        if not isinstance(tags, dict):
            raise ApplicationError(f"features[{index}].tags: must be an object.")
        cleaned.append(
            {
                "name": name,
                "dtype": dtype,
                "description": str(item.get("description") or ""),
                "tags": tags,
            }
        )
    return cleaned


def group_fields_check(fields: dict[str, Any], *, transformation_sql: str) -> dict[str, Any]:
    """The rules on a group's fields (availability, TTL, cron schedule, tags, tasks), shared by
    create, update and the admin form; returns them normalised.

    Raises:
        ApplicationError: naming the field.
    """
    fields = _group_fields_validate(fields)
    _schedule_check(fields.get("schedule") or "", transformation_sql=transformation_sql)
    return fields


def _schedule_check(schedule: str, *, transformation_sql: str) -> None:
    if schedule.strip() and not transformation_sql.strip():
        raise ApplicationError("schedule: only a group with transformation SQL runs on a schedule.")


def _group_fields_validate(fields: dict[str, Any]) -> dict[str, Any]:
    if "availability" in fields:
        fields["availability"] = ingestion.availability_validate(fields["availability"])
    ttl = fields.get("ttl_seconds")
    if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0):
        raise ApplicationError("ttl_seconds: must be a positive integer or null.")
    schedule = fields.get("schedule")
    if schedule and not _CRON.match(schedule.strip()):
        raise ApplicationError("schedule: must be a five-field cron expression, e.g. '0 3 * * *'.")
    if "tags" in fields and not isinstance(fields["tags"], dict):
        raise ApplicationError("tags: must be an object.")
    if "tasks" in fields and (
        not isinstance(fields["tasks"], list)
        or not all(isinstance(t, str) for t in fields["tasks"])
    ):
        raise ApplicationError("tasks: must be a list of strings.")
    return fields


@transaction.atomic
def group_create(
    *,
    name: str,
    entity: Entity,
    features: list[dict[str, Any]],
    description: str = "",
    ttl_seconds: int | None = None,
    availability: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    tasks: list[str] | None = None,
    owner: Group | None = None,
    source: DataSource | None = None,
    transformation_sql: str = "",
    transformation_sources: Sequence[DataSource] = (),
    schedule: str = "",
    naive_timestamps_utc: bool = False,
) -> FeatureGroup:
    """Create a feature group with its features (and its beat schedule, if any).

    Raises:
        ApplicationError: a bad feature, dtype, TTL, availability rule or schedule.
        ConflictError: the name is taken.
    """
    if FeatureGroup.objects.filter(name=name).exists():
        raise ConflictError(f"Feature group '{name}' already exists.")
    fields = group_fields_check(
        {
            "ttl_seconds": ttl_seconds,
            "availability": availability,
            "tags": tags or {},
            "tasks": tasks or [],
            "schedule": (schedule or "").strip(),
        },
        transformation_sql=transformation_sql,
    )
    cleaned = features_check(features, keys=entity.join_keys)
    group = FeatureGroup(
        name=name,
        entity=entity,
        description=description,
        owner=owner,
        source=source,
        transformation_sql=transformation_sql,
        naive_timestamps_utc=naive_timestamps_utc,
        **fields,
    )
    _clean_save(group)
    if transformation_sources:
        group.transformation_sources.set(transformation_sources)
    for position, item in enumerate(cleaned):
        Feature.objects.create(group=group, position=position, **item)
    group_schedule_sync(group=group)
    return group


@transaction.atomic
def group_update(
    *, group: FeatureGroup, add_features: list[dict[str, Any]] | None = None, **changes: Any
) -> FeatureGroup:
    """Change a group's metadata or rules, or add features (existing data reads them as null)."""
    allowed = {
        "description",
        "ttl_seconds",
        "availability",
        "tags",
        "tasks",
        "owner",
        "source",
        "transformation_sql",
        "schedule",
        "naive_timestamps_utc",
    }
    unknown = set(changes) - allowed - {"transformation_sources"}
    if unknown:
        raise ApplicationError(f"Cannot change {sorted(unknown)} of a feature group.")
    sources = changes.pop("transformation_sources", None)
    changes = _group_fields_validate(changes)
    for field, value in changes.items():
        setattr(group, field, (value or "").strip() if field == "schedule" else value)
    _schedule_check(group.schedule, transformation_sql=group.transformation_sql)
    _clean_save(group)
    if sources is not None:
        group.transformation_sources.set(sources)
    if add_features:
        existing = list(group.features.values_list("name", flat=True))
        cleaned = features_check(add_features, keys=[*group.entity.join_keys, *existing])
        start = len(existing)
        for offset, item in enumerate(cleaned):
            Feature.objects.create(group=group, position=start + offset, **item)
    group_schedule_sync(group=group)
    return group


@transaction.atomic
def group_delete(*, group: FeatureGroup) -> None:
    """Delete a group, its beat schedule, and (after commit) its stored partitions and online
    values; a store that fails then is logged, the group stays deleted."""
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(name=_schedule_name(group)).delete()
    names = offline.partition_names(group)
    group_id = group.pk
    group.delete()

    def remove_stored() -> None:
        for name in names:
            default_storage.delete(name)
        try:
            online.store().clear(group_id)
        except Exception:  # Redis down: orphaned keys, never read (ids are not reused)
            logger.exception("could not remove the online values of deleted group %s", group_id)

    transaction.on_commit(remove_stored)


def feature_tags_check(tags: Any) -> dict[str, Any]:
    """A feature's tags: a JSON object. Raises ApplicationError otherwise."""
    if not isinstance(tags, dict):
        raise ApplicationError("tags: must be an object.")
    return tags


def feature_update(
    *, feature: Feature, description: str | None = None, tags: dict[str, Any] | None = None
) -> Feature:
    """Change a feature's description or tags (its name and dtype never change).

    Raises:
        ApplicationError: see `feature_tags_check`.
    """
    if description is not None:
        feature.description = description
    if tags is not None:
        feature.tags = feature_tags_check(tags)
        # Marking a column sensitive (or taking back its top values) takes effect at once, not
        # at the next ingestion: the published statistics lose the raw values now.
        stats = dict(feature.statistics or {})
        if tags.get("sensitive"):
            stats = {k: stats[k] for k in ("count", "nulls") if k in stats} | {"sensitive": True}
        elif not tags.get("top_values"):
            stats.pop("top", None)
        feature.statistics = stats
    feature.save(update_fields=["description", "tags", "statistics"])
    return feature


def feature_delete_check(*, feature: Feature) -> None:
    """A feature may be removed only while nothing holds or reads it.

    Raises:
        ConflictError: its group has stored data (partitions or online values carry the
            column), or a feature service reads it.
    """
    group = feature.group
    if group.partitions.exists() or group.online_values.exists():
        raise ConflictError(
            f"features: {feature} cannot be removed: {group.name} holds stored data with it."
        )
    used = sorted(feature.services.values_list("name", flat=True))
    if used:
        raise ConflictError(
            f"features: {feature} cannot be removed: the feature services {used} read it."
        )


def feature_delete(*, feature: Feature) -> None:
    """Remove a feature nothing holds or reads. Raises ConflictError: see `feature_delete_check`."""
    feature_delete_check(feature=feature)
    feature.delete()


def _schedule_name(group: FeatureGroup) -> str:
    return f"features: transform {group.name} (#{group.pk})"


def group_schedule_sync(*, group: FeatureGroup) -> None:
    """Create, update or remove the group's django-celery-beat task from `group.schedule`."""
    from django_celery_beat.models import PeriodicTask

    name = _schedule_name(group)
    if not group.schedule:
        PeriodicTask.objects.filter(name=name).delete()
        return
    crontab = crontab_from_expression(group.schedule, field="schedule")
    PeriodicTask.objects.update_or_create(
        name=name,
        defaults={
            "task": "features.tasks.transformation_scheduled",
            "crontab": crontab,
            "interval": None,
            "args": json.dumps([group.pk]),
            "enabled": True,
            "description": f"Runs the transformation of feature group {group.name}.",
        },
    )


def service_create(
    *,
    name: str,
    features: Sequence[str],
    description: str = "",
    owner: Group | None = None,
    user: Any = None,
) -> FeatureService:
    """Create a feature service from `group:feature` references."""
    if FeatureService.objects.filter(name=name).exists():
        raise ConflictError(f"Feature service '{name}' already exists.")
    resolved = online.features_resolve(refs=list(features))
    service_check(owner=owner, features=resolved)
    service = FeatureService(
        name=name,
        description=description,
        owner=owner,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    with transaction.atomic():
        _clean_save(service)
        service.features.set(resolved)
    return service


def service_update(
    *,
    service: FeatureService,
    features: Sequence[str] | None = None,
    description: str | None = None,
    owner: Group | None = None,
    clear_owner: bool = False,
) -> FeatureService:
    """Change a service's description, features or team.

    Raises:
        PermissionDeniedError: see `service_check`.
    """
    with transaction.atomic():
        if description is not None:
            service.description = description
        if clear_owner:
            service.owner = None
        elif owner is not None:
            service.owner = owner
        resolved = (
            online.features_resolve(refs=list(features))
            if features is not None
            else list(service.features.select_related("group"))
        )
        service_check(owner=service.owner, features=resolved, service=service)
        service.save(update_fields=["description", "owner"])
        if features is not None:
            service.features.set(resolved)
    return service


def service_delete(*, service: FeatureService) -> None:
    """Delete a feature service; versions linked to it no longer read feature values."""
    service.delete()


def service_check(
    *, owner: Group | None, features: Sequence[Feature], service: FeatureService | None = None
) -> None:
    """The rule on a service's features, for create, update and the admin form: see
    `service_features_check`, with the versions already linked to `service`.

    Raises:
        PermissionDeniedError: a group belongs to another team that granted no read.
    """
    versions = (
        service.model_versions.select_related("model__owner")
        if service is not None and service.pk
        else []
    )
    service_features_check(owner=owner, features=features, versions=versions)


def service_features_check(
    *, owner: Group | None, features: Sequence[Feature], versions: Any
) -> None:
    """A service's team, and the team of every model version linked to it (which reads these
    values at predict time, unchecked), must own each feature's group or hold a read grant.

    Raises:
        PermissionDeniedError: a group belongs to another team that granted no read.
    """
    teams = {owner.pk if owner else None: owner}
    for version in versions:
        model_owner = version.model.owner
        teams[model_owner.pk if model_owner else None] = model_owner
    for group in sorted({f.group for f in features}, key=lambda g: g.name):
        for team in teams.values():
            if not team_may_read(team=team, obj=group):
                holder = group.owner.name if group.owner else "no team (admin-only)"
                who = team.name if team else "a team-less object"
                raise PermissionDeniedError(
                    f"features: the feature group {group.name} belongs to {holder}; "
                    f"{who} needs a read grant on it first."
                )


# --- ingestion --------------------------------------------------------------------------------


def ingest_path(
    *, group: FeatureGroup, path: Path, job_id: int | None = None, upload_sha256: str = ""
) -> int:
    """Validate a whole file and append it as a partition with its statistics; returns the row
    count. With `job_id`, the job is marked succeeded in the same transaction.

    Raises:
        ingestion.IngestError: the file is rejected (nothing is stored).
        offline.DuplicateUpload: the group already holds this upload (nothing is stored).
        jobs.JobStopped: the job was cancelled meanwhile (nothing is stored).
    """
    if path.stat().st_size == 0:
        raise ingestion.IngestError(["the file is empty"])
    frame = ingestion.read_frame(path)
    if job_id:
        jobs.job_set_progress(job_id=job_id, done=0, total=len(frame))
    for _attempt in range(2):
        validated = ingestion.frame_validate(group=group, frame=frame, now=timezone.now())
        rows = validated.table.num_rows
        try:
            offline.partition_commit(
                group=group,
                table=validated.table,
                origin="ingestion",
                job_id=job_id,
                job_result={"rows": rows},
                key_dtypes=validated.key_dtypes,
                upload_sha256=upload_sha256,
            )
        except offline.KeyTypesChanged as changed:
            # Another ingestion fixed the key types meanwhile; validate again against them.
            group.key_dtypes = changed.key_dtypes
            continue
        return rows
    raise ConflictError(f"The key types of '{group.name}' keep changing; try again.")


def feature_push(
    *, group: FeatureGroup, frame: pd.DataFrame, online_store: bool, offline_store: bool
) -> int:
    """Rows a client pushes (the Feast push API): checked as an ingest file is (join keys,
    event_timestamp, the features; nothing else), with `available_at` the push time whatever
    the group's availability rule. Appended as an offline partition (as an ingestion is), then
    written to the online store, as asked; returns the row count.

    Raises:
        ingestion.IngestError: the rows are rejected (nothing is written).
        ApplicationError: more cells than MLPLATFORM_INLINE_INGEST_CELLS (413).
    """
    cells = len(frame) * max(len(frame.columns), 1)
    if cells > settings.MLPLATFORM_INLINE_INGEST_CELLS:
        raise ApplicationError(
            f"A push holds at most {settings.MLPLATFORM_INLINE_INGEST_CELLS} cells, got {cells}: "
            f"ingest larger data as a file (/api/v1/features/groups/{group.name}/ingest).",
            status_code=413,
        )
    now = timezone.now()
    for _attempt in range(2):
        validated = ingestion.frame_validate(
            group=group, frame=frame, now=now, with_available=False
        )
        table = validated.table
        table = table.set_column(
            table.schema.get_field_index(ingestion.AVAILABLE),
            ingestion.AVAILABLE,
            pa.array(np.full(table.num_rows, ingestion.naive_utc(now)), type=pa.timestamp("us")),
        )
        if offline_store:
            try:
                offline.partition_commit(
                    group=group, table=table, origin="ingestion", key_dtypes=validated.key_dtypes
                )
            except offline.KeyTypesChanged as changed:
                group.key_dtypes = changed.key_dtypes
                continue
        if online_store:
            online.online_write(group=group, rows=table.to_pylist())
        return table.num_rows
    raise ConflictError(f"The key types of '{group.name}' keep changing; try again.")


def _spool(file: IO[bytes], path: Path) -> str:
    """Copy an upload to a local file; returns its sha256 (the key that makes retries safe)."""
    digest = hashlib.sha256()
    with path.open("wb") as sink:
        for chunk in iter(lambda: file.read(1024 * 1024), b""):
            digest.update(chunk)
            sink.write(chunk)
    return digest.hexdigest()


def _ingest_cells(group: FeatureGroup, path: Path) -> tuple[int, int]:
    """(columns, columns * rows) of an upload for this group, cheaply: newlines or the footer."""
    columns = len(group.entity.join_keys) + 2 + group.features.count()
    if ingestion.file_format(path) == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return columns, columns * int(pq.ParquetFile(path).metadata.num_rows)
        except (pa.ArrowException, OSError, ValueError):
            return columns, 0  # unreadable: the inline ingest says why
    with path.open("rb") as stream:
        lines = sum(block.count(b"\n") for block in iter(lambda: stream.read(1 << 20), b""))
    return columns, columns * lines


def _ingest_original(group: FeatureGroup, sha256: str) -> tuple[int | None, Job | None] | None:
    """What an earlier identical upload to this group answered, if one was stored or runs."""
    partition = group.partitions.filter(upload_sha256=sha256).select_related("job").first()
    if partition is not None:
        return (None, partition.job) if partition.job else (partition.rows, None)
    running = (
        Job.objects.filter(
            kind=Job.Kind.INGESTION,
            params__group_id=group.pk,
            params__upload_sha256=sha256,
        )
        .exclude(status__in=[Job.Status.FAILED, Job.Status.CANCELLED])
        .order_by("id")
        .first()
    )
    return (None, running) if running is not None else None


def ingestion_start(
    *, group: FeatureGroup, file: IO[bytes], size: int, user: Any = None
) -> tuple[int | None, Job | None]:
    """Ingest inline (returns (rows, None)) or, for a large or wide file, as a job ((None, job)).

    The same file (by sha256) sent again to the same group stores nothing new: the answer is
    the first one's (its row count, or its job).
    """
    if size == 0:
        raise ingestion.IngestError(["the file is empty"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        sha256 = _spool(file, path)
        original = _ingest_original(group, sha256)
        if original is not None:
            return original
        columns, cells = _ingest_cells(group, path)
        if (
            size > settings.MLPLATFORM_INLINE_INGEST_BYTES
            or columns > settings.MLPLATFORM_INLINE_INGEST_COLUMNS
            or cells > settings.MLPLATFORM_INLINE_INGEST_CELLS
        ):
            job = jobs.job_create(
                kind=Job.Kind.INGESTION,
                description=f"Ingest into {group.name}",
                submitted_by=user,
                owner=group.owner,
                params={"group_id": group.pk, "upload_sha256": sha256},
            )
            with path.open("rb") as stream:
                job.input.save(f"ingest-{job.pk}.data", File(stream), save=True)
            enqueue_after_commit(tasks.ingestion_run, job.pk)
            return None, job
        try:
            return ingest_path(group=group, path=path, upload_sha256=sha256), None
        except offline.DuplicateUpload:
            # The same upload, committed by a concurrent request meanwhile.
            return _ingest_original(group, sha256) or (None, None)


def ingestion_run_job(*, job_id: int) -> None:
    with jobs.job_running(job_id=job_id) as job:
        if job is None:
            return
        group = FeatureGroup.objects.get(pk=job.params["group_id"])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "input"
            with job.input.open("rb") as source, path.open("wb") as sink:
                for chunk in iter(lambda: source.read(1024 * 1024), b""):
                    sink.write(chunk)
            try:
                ingest_path(
                    group=group,
                    path=path,
                    job_id=job_id,
                    upload_sha256=job.params.get("upload_sha256", ""),
                )
            except offline.DuplicateUpload as exc:
                # Another request stored the same file first: this job adds nothing.
                jobs.job_succeed(
                    job_id=job_id, result={"rows": exc.partition.rows, "duplicate": True}
                )


# --- transformations --------------------------------------------------------------------------


def transformation_start(*, group: FeatureGroup, user: Any = None) -> Job:
    """Queue a transformation run of the group."""
    if not group.transformation_sql.strip():
        raise ApplicationError(f"Feature group '{group.name}' has no transformation SQL.")
    job = jobs.job_create(
        kind=Job.Kind.TRANSFORMATION,
        description=f"Transform {group.name}",
        submitted_by=user,
        owner=group.owner,
        # Copied at submit, as a batch job's settings are, so the worker applies this limit.
        params={
            "group_id": group.pk,
            "query_timeout_seconds": float(settings.MLPLATFORM_QUERY_TIMEOUT_SECONDS),
        },
        unit="rows",
    )
    enqueue_after_commit(tasks.transformation_run, job.pk)
    return job


def transformation_run_job(*, job_id: int) -> None:
    with jobs.job_running(job_id=job_id) as job:
        if job is None:
            return
        group = FeatureGroup.objects.get(pk=job.params["group_id"])
        # New rows commit with their statistics and the job's success in one transaction.
        result = transformations.run(
            group=group,
            now=timezone.now(),
            job_id=job_id,
            query_timeout=job.params.get("query_timeout_seconds"),
        )
        if not result["appended"]:
            jobs.job_set_progress(job_id=job_id, done=0, total=0)
            jobs.job_succeed(job_id=job_id, result=result)


def transformation_scheduled(*, group_id: int) -> int | None:
    """Beat entry: record a job for the scheduled run and do it; returns the job id."""
    group = FeatureGroup.objects.filter(pk=group_id).first()
    if group is None or not group.transformation_sql.strip():
        return None
    job = jobs.job_create(
        kind=Job.Kind.TRANSFORMATION,
        description=f"Transform {group.name} (scheduled)",
        owner=group.owner,
        params={"group_id": group.pk, "scheduled": True},
    )
    transformation_run_job(job_id=job.pk)
    return job.pk


# --- materialisation --------------------------------------------------------------------------


def materialisation_start(*, group: FeatureGroup, user: Any = None) -> Job:
    """Queue a materialisation of the group into the online store."""
    job = jobs.job_create(
        kind=Job.Kind.MATERIALISATION,
        description=f"Materialise {group.name}",
        submitted_by=user,
        owner=group.owner,
        params={"group_id": group.pk},
        unit="entities",
    )
    enqueue_after_commit(tasks.materialisation_run, job.pk)
    return job


def materialise_group(*, group: FeatureGroup, job_id: int | None = None) -> dict[str, int]:
    """Materialise now, in this process (the demo and the job both use it)."""
    advance: Callable[[int], None] | None = None
    if job_id is not None:

        def advance(done: int) -> None:
            jobs.job_advance(job_id=job_id, done=done)

    return online.materialise(
        group=group, chunk_rows=settings.MLPLATFORM_MATERIALISE_CHUNK_ROWS, progress=advance
    )


def materialisation_run_job(*, job_id: int) -> None:
    with jobs.job_running(job_id=job_id) as job:
        if job is None:
            return
        group = FeatureGroup.objects.get(pk=job.params["group_id"])
        result = materialise_group(group=group, job_id=job_id)
        jobs.job_set_progress(job_id=job_id, done=result["candidates"], total=result["candidates"])
        jobs.job_succeed(job_id=job_id, result=result)


# --- training sets ----------------------------------------------------------------------------


def _entity_file_rows(path: Path) -> int:
    if ingestion.file_format(path) == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as stream:
        return max(0, sum(1 for line in stream if line.strip()) - 1)


def training_set_request(
    *,
    features: list[Feature],
    fmt: str = "parquet",
    full_names: bool = False,
    rows: list[dict[str, Any]] | None = None,
    entity_file: IO[bytes] | None = None,
    user: Any = None,
) -> tuple[bytes | None, Job | None]:
    """Build a training set inline ((bytes, None)) or, above the inline row count, as a job.

    Raises:
        ApplicationError: bad format, entity frame or feature list.
    """
    if fmt not in training_sets.CONTENT_TYPES:
        raise ApplicationError(f"format: must be 'parquet' or 'csv', got {fmt!r}.")
    if rows is None and entity_file is None:
        raise ApplicationError("entities: give `entities` rows or an `entity_file`.")
    with tempfile.TemporaryDirectory() as tmp:
        entities_path = None
        if entity_file is not None:
            entities_path = Path(tmp) / "entities"
            with entities_path.open("wb") as sink:
                for chunk in iter(lambda: entity_file.read(1024 * 1024), b""):
                    sink.write(chunk)
            count = _entity_file_rows(entities_path)
        else:
            count = len(rows or [])
        if count > settings.MLPLATFORM_INLINE_TRAINING_SET_ROWS:
            job = jobs.job_create(
                kind=Job.Kind.TRAINING_SET,
                description=f"Training set of {count} rows",
                submitted_by=user,
                total=count,
                params={
                    "features": [f"{f.group.name}:{f.name}" for f in features],
                    "format": fmt,
                    "full_names": full_names,
                },
            )
            if entities_path is not None:
                with entities_path.open("rb") as stream:
                    job.input.save(f"entities-{job.pk}.data", File(stream), save=True)
            else:
                job.input.save(
                    f"entities-{job.pk}.json",
                    File(_json_stream(rows or [])),
                    save=True,
                )
            enqueue_after_commit(tasks.training_set_run, job.pk)
            return None, job
        output = Path(tmp) / f"training-set.{fmt}"
        training_sets.build(
            features=features,
            output=output,
            fmt=fmt,
            full_names=full_names,
            rows=rows,
            entity_file=entities_path,
        )
        return output.read_bytes(), None


def _json_stream(rows: list[dict[str, Any]]) -> Any:
    import io

    return io.BytesIO(json.dumps(rows, default=str).encode())


def training_set_run_job(*, job_id: int) -> None:
    with jobs.job_running(job_id=job_id) as job:
        if job is None:
            return
        features = online.features_resolve(refs=job.params["features"])
        fmt = job.params["format"]
        with tempfile.TemporaryDirectory() as tmp:
            entities = Path(tmp) / "entities"
            with job.input.open("rb") as source, entities.open("wb") as sink:
                for chunk in iter(lambda: source.read(1024 * 1024), b""):
                    sink.write(chunk)
            rows = None
            entity_file: Path | None = entities
            if job.input.name.endswith(".json"):
                rows = json.loads(entities.read_text())
                entity_file = None
            output = Path(tmp) / f"training-set.{fmt}"
            count = training_sets.build(
                features=features,
                output=output,
                fmt=fmt,
                full_names=job.params.get("full_names", False),
                rows=rows,
                entity_file=entity_file,
                job_id=job_id,
            )
            with output.open("rb") as stream:
                stored = default_storage.save(
                    f"jobs/outputs/training-set-{job_id}.{fmt}", File(stream)
                )
        try:
            # A job cancelled meanwhile keeps no output.
            with transaction.atomic():
                jobs.job_lock_running(job_id=job_id)
                Job.objects.filter(pk=job_id).update(
                    output=stored, output_content_type=training_sets.CONTENT_TYPES[fmt]
                )
                jobs.job_succeed(job_id=job_id, result={"rows": count})
        except BaseException:
            default_storage.delete(stored)
            raise
