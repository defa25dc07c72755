"""The offline store: immutable Parquet partitions in Django storage, read by DuckDB.

Each ingestion or transformation run adds one partition; nothing is ever rewritten, so a past
training set can be recomputed exactly. Local FileSystemStorage paths are handed to DuckDB
directly; remote storage is copied to a temporary folder first.

A partition and the statistics it changes commit together (`partition_commit`): the file is
written under the group's `_pending/` folder, and takes its final name as the last step of the
one transaction that records it, its statistics and, for a job, the job's success. A job that
was cancelled meanwhile commits nothing, and a file whose transaction failed is removed.
Queries a job runs are interrupted when it is cancelled or a query passes its time limit
(`QueryGuard`), and spill to a folder of their own capped in size.
"""

# DuckDB SQL is assembled from quoted identifiers and literals (offline.ident/literal); user
# values never reach it unquoted, and the one user query is sandboxed (transformations.py).
# ruff: noqa: S608

import contextlib
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import IntegrityError, connections, transaction

from features.ingestion import ARROW_TYPES, AVAILABLE, EVENT
from features.models import Feature, FeatureGroup, OfflinePartition
from jobs import services as jobs
from jobs.models import Job
from mlplatform.errors import ApplicationError

HISTOGRAM_BINS = 20
PENDING = "_pending"
# Up to this many values (rows x features), statistics are computed in memory with Arrow.
STATISTICS_IN_MEMORY_CELLS = 20_000_000
GUARD_POLL_SECONDS = 0.25
_SQL_TYPES: dict[str, str] = {
    Feature.Dtype.INT64: "BIGINT",
    Feature.Dtype.FLOAT64: "DOUBLE",
    Feature.Dtype.BOOL: "BOOLEAN",
    Feature.Dtype.STRING: "VARCHAR",
    Feature.Dtype.DATETIME: "TIMESTAMP",
}


def sql_type(dtype: str) -> str:
    return _SQL_TYPES.get(dtype, "VARCHAR")


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _spill_root() -> Path:
    root = Path(settings.VAR_DIR) / "duckdb-tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


def connect(*, spill: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a memory cap and a spill folder, so big joins go out of core.

    What it may spill is capped too (MLPLATFORM_DUCKDB_MAX_TEMP_SIZE): past it a query fails
    instead of filling the disk.
    """
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    con.execute(f"SET memory_limit={literal(settings.MLPLATFORM_DUCKDB_MEMORY_LIMIT)}")
    con.execute(f"SET threads={int(settings.MLPLATFORM_DUCKDB_THREADS)}")
    con.execute(f"SET temp_directory={literal(str(spill or _spill_root()))}")
    con.execute(f"SET max_temp_directory_size={literal(settings.MLPLATFORM_DUCKDB_MAX_TEMP_SIZE)}")
    con.execute("SET preserve_insertion_order=true")
    con.execute("SET enable_progress_bar=false")
    return con


@contextlib.contextmanager
def connection(*, label: str = "query") -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect()` with a spill folder of its own, removed when the connection closes."""
    spill = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=_spill_root()))
    con = connect(spill=spill)
    try:
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


class QueryTimeout(ApplicationError):
    """A query ran past MLPLATFORM_QUERY_TIMEOUT_SECONDS and was interrupted."""


def query_error(exc: duckdb.Error) -> ApplicationError | None:
    """A DuckDB error a person can act on (temp space or memory exhausted), or None."""
    if not isinstance(exc, duckdb.OutOfMemoryException):
        return None
    if "max_temp_directory_size" in str(exc):
        return ApplicationError(
            "The query needed more temporary disk space than allowed "
            f"(MLPLATFORM_DUCKDB_MAX_TEMP_SIZE={settings.MLPLATFORM_DUCKDB_MAX_TEMP_SIZE}) "
            "and was stopped: make it lighter (fewer rows or columns per run), or raise the limit."
        )
    return ApplicationError(
        "The query ran out of memory "
        f"(MLPLATFORM_DUCKDB_MEMORY_LIMIT={settings.MLPLATFORM_DUCKDB_MEMORY_LIMIT}): {exc}"
    )


class QueryGuard:
    """Interrupts a DuckDB connection when its job stops or a query runs past the time limit.

    A cancel is a row update made by another process, so a watcher thread polls the job's
    status (and the running query's age) and calls `interrupt()`, which DuckDB honours between
    vectors: a long query stops within moments. Use it as a context manager, run each statement
    inside `guard.query()`, and call `check()` between steps that are not queries.
    """

    def __init__(
        self, con: duckdb.DuckDBPyConnection, *, job_id: int | None, timeout: float | None = None
    ) -> None:
        self.con = con
        self.job_id = job_id
        limit = settings.MLPLATFORM_QUERY_TIMEOUT_SECONDS if timeout is None else timeout
        self.timeout = float(limit)
        self.reason: str | None = None
        self._query_started: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="query-guard", daemon=True)

    def __enter__(self) -> "QueryGuard":
        self.reason = self._why_stop()  # a job cancelled before it began does not begin
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @contextlib.contextmanager
    def query(self) -> Iterator[None]:
        """Run one statement under the time limit; an interrupt raises its reason instead."""
        self.check()
        self._query_started = time.monotonic()
        try:
            yield
        except duckdb.Error:
            self.check()
            raise
        finally:
            self._query_started = None
        self.check()

    def check(self) -> None:
        """Raise if the job stopped or a query passed the time limit.

        Raises:
            jobs.JobStopped: the job was cancelled (or failed elsewhere).
            QueryTimeout: a query ran past MLPLATFORM_QUERY_TIMEOUT_SECONDS.
        """
        if self.reason == "stopped":
            raise jobs.JobStopped(f"Job {self.job_id} is no longer running.")
        if self.reason == "timeout":
            raise QueryTimeout(
                f"The query ran longer than {self.timeout:g} s "
                "(MLPLATFORM_QUERY_TIMEOUT_SECONDS) and was stopped."
            )

    def _watch(self) -> None:
        try:
            while not self._stop.wait(GUARD_POLL_SECONDS):
                if self.reason is None:
                    self.reason = self._why_stop()
                if self.reason is not None:
                    self.con.interrupt()  # at every turn: a new statement may have begun
        finally:
            connections.close_all()  # this thread's own database connections

    def _why_stop(self) -> str | None:
        started = self._query_started
        if started is not None and self.timeout > 0 and time.monotonic() - started > self.timeout:
            return "timeout"
        if (
            self.job_id is not None
            and Job.objects.filter(pk=self.job_id).exclude(status=Job.Status.RUNNING).exists()
        ):
            return "stopped"
        return None


class DuplicateUpload(Exception):
    """This exact upload (same sha256) is already a partition of the group."""

    def __init__(self, partition: OfflinePartition) -> None:
        super().__init__(f"already stored as {partition}")
        self.partition = partition


class KeyTypesChanged(Exception):
    """Another ingestion fixed the group's key types first; validate again against them."""

    def __init__(self, key_dtypes: dict[str, str]) -> None:
        super().__init__(f"key types are now {key_dtypes}")
        self.key_dtypes = key_dtypes


def partition_commit(
    *,
    group: FeatureGroup,
    table: pa.Table,
    origin: str,
    job_id: int | None = None,
    job_result: dict[str, Any] | None = None,
    key_dtypes: dict[str, str] | None = None,
    upload_sha256: str = "",
    guard: QueryGuard | None = None,
) -> OfflinePartition:
    """Append `table` as a partition and update the statistics, all or nothing.

    Statistics are computed with the new file before the transaction (it stays short); the
    transaction then locks the job (it must still be running, and is marked succeeded with
    `job_result`) and the group, records the partition and the statistics, and moves the file
    from `_pending/` to its final name. Any failure removes the file.

    Raises:
        jobs.JobStopped: the job was cancelled meanwhile; nothing is stored.
        DuplicateUpload: a partition of this group came from the same upload.
        KeyTypesChanged: the group's key types were fixed otherwise meanwhile.
    """
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S")
    base = f"features/offline/{group.name}"
    filename = f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
    pending = _table_save(table, f"{base}/{PENDING}/{filename}")
    final = f"{base}/{filename}"
    stored = pending
    try:
        known = partition_names(group)
        features = statistics_collect(group=group, names=[*known, pending])
        if guard is not None:
            guard.check()
        try:
            with transaction.atomic():
                if job_id is not None:
                    jobs.job_lock_running(job_id=job_id)
                locked = FeatureGroup.objects.select_for_update().get(pk=group.pk)
                if upload_sha256:
                    existing = locked.partitions.filter(upload_sha256=upload_sha256).first()
                    if existing is not None:
                        raise DuplicateUpload(existing)
                if key_dtypes is not None and locked.key_dtypes != key_dtypes:
                    if locked.key_dtypes:
                        raise KeyTypesChanged(locked.key_dtypes)
                    FeatureGroup.objects.filter(pk=group.pk).update(key_dtypes=key_dtypes)
                    group.key_dtypes = key_dtypes
                current = partition_names(locked)
                if current != known:  # another partition was committed meanwhile
                    features = statistics_collect(group=group, names=[*current, pending])
                partition = _partition_record(
                    group=group, table=table, path=final, origin=origin, job_id=job_id
                )
                partition.upload_sha256 = upload_sha256
                partition.save()
                Feature.objects.bulk_update(features, ["statistics"], batch_size=500)
                if job_id is not None:
                    jobs.job_set_progress(job_id=job_id, done=table.num_rows, total=table.num_rows)
                    jobs.job_succeed(job_id=job_id, result=job_result)
                stored = _storage_move(pending, final)
        except IntegrityError:
            # The same upload, committed by a concurrent request between our check and insert.
            twin = group.partitions.filter(upload_sha256=upload_sha256).first()
            if upload_sha256 and twin is not None:
                raise DuplicateUpload(twin) from None
            raise
    except BaseException:
        with contextlib.suppress(OSError):
            default_storage.delete(stored)
        raise
    return partition


def _table_save(table: pa.Table, name: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "part.parquet"
        pq.write_table(table, local, compression="zstd", row_group_size=128 * 1024)
        with local.open("rb") as stream:
            return default_storage.save(name, File(stream, name=local.name))


def _storage_move(source: str, target: str) -> str:
    """Give a stored file its final name (a rename on local storage, copy + delete elsewhere)."""
    if isinstance(default_storage, FileSystemStorage):
        destination = Path(default_storage.path(target))
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(default_storage.path(source), destination)
        return target
    with default_storage.open(source, "rb") as stream:
        saved = default_storage.save(target, File(stream, name=Path(target).name))
    default_storage.delete(source)
    if saved != target:
        OfflinePartition.objects.filter(path=target).update(path=saved)
    return saved


def _partition_record(
    *, group: FeatureGroup, table: pa.Table, path: str, origin: str, job_id: int | None
) -> OfflinePartition:
    bounds = pa.compute.min_max(table.column(EVENT))
    return OfflinePartition(
        group=group,
        path=path,
        origin=origin,
        rows=table.num_rows,
        min_event_timestamp=_aware(bounds["min"].as_py()),
        max_event_timestamp=_aware(bounds["max"].as_py()),
        max_available_at=_aware(pa.compute.max(table.column(AVAILABLE)).as_py()),
        job_id=job_id,
    )


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None else None


@contextlib.contextmanager
def local_paths(names: Sequence[str]) -> Iterator[list[str]]:
    """Filesystem paths DuckDB can read for these storage names (copies if storage is remote)."""
    if isinstance(default_storage, FileSystemStorage):
        yield [default_storage.path(name) for name in names]
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for index, name in enumerate(names):
            target = Path(tmp) / f"{index:06d}-{Path(name).name}"
            with default_storage.open(name, "rb") as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, length=1024 * 1024)
            paths.append(str(target))
        yield paths


def parquet_scan(paths: Sequence[str]) -> str:
    """SQL for reading a list of partitions (union by name: added features read as NULL)."""
    listed = ", ".join(literal(p) for p in paths)
    return f"read_parquet([{listed}], union_by_name=true)"


@dataclass
class GroupData:
    """A group's partitions as a SQL relation inside an open connection."""

    group: FeatureGroup
    relation: str
    keys: list[str]
    features: list[Feature]


def empty_relation(group: FeatureGroup, features: Sequence[Feature]) -> str:
    """SQL for an empty relation with the group's layout, for a group without data."""
    columns = [
        *(
            f"CAST(NULL AS {sql_type(group.key_dtypes.get(k, 'string'))}) AS {ident(k)}"
            for k in group.entity.join_keys
        ),
        f"CAST(NULL AS TIMESTAMP) AS {EVENT}",
        f"CAST(NULL AS TIMESTAMP) AS {AVAILABLE}",
        *(f"CAST(NULL AS {sql_type(f.dtype)}) AS {ident(f.name)}" for f in features),
    ]
    return f"(SELECT {', '.join(columns)} WHERE false)"


def group_relation(group: FeatureGroup, paths: Sequence[str]) -> str:
    features = list(group.features.all())
    if not paths:
        return empty_relation(group, features)
    return f"(SELECT * FROM {parquet_scan(paths)})"


def partition_names(group: FeatureGroup) -> list[str]:
    return list(group.partitions.order_by("id").values_list("path", flat=True))


def statistics_compute(*, group: FeatureGroup) -> None:
    """Recompute every feature's statistics over the group's whole offline store."""
    features = statistics_collect(group=group, names=partition_names(group))
    Feature.objects.bulk_update(features, ["statistics"], batch_size=500)


@dataclass
class _Summary:
    """What a feature's statistics are made of, however they were computed."""

    count: int
    nulls: int
    distinct: int
    low: float | None
    high: float | None
    mean: float | None
    std: float | None
    histogram: dict[str, list[float]] | None
    top: list[tuple[Any, int]] | None


def statistics_collect(*, group: FeatureGroup, names: Sequence[str]) -> list[Feature]:
    """The group's features with their statistics over these partitions set (not saved).

    A group whose data fits in STATISTICS_IN_MEMORY_CELLS is summarised in memory with Arrow:
    a wide group (thousands of features) would otherwise cost a DuckDB query, and a scan of
    every footer, per feature. Larger groups are summarised by DuckDB, out of core.
    """
    features = list(group.features.all())
    if not features:
        return []
    with local_paths(names) as paths:
        files = [pq.ParquetFile(path) for path in paths]
        rows = sum(file.metadata.num_rows for file in files)
        if rows * len(features) <= STATISTICS_IN_MEMORY_CELLS:
            columns = _arrow_columns(files, features)
            summaries = {f.name: _arrow_summary(f, columns.pop(f.name)) for f in features}
        else:
            summaries = _duckdb_summaries(group, features, paths)
    for feature in features:
        summary = summaries[feature.name]
        stats: dict[str, Any] = {
            "count": summary.count,
            "nulls": summary.nulls,
            "distinct": summary.distinct,
            "min": _num(summary.low),
            "max": _num(summary.high),
            "mean": _num(summary.mean),
            "std": _num(summary.std),
        }
        tags = feature.tags if isinstance(feature.tags, dict) else {}
        if tags.get("sensitive"):
            # A column marked sensitive publishes counts only: min, max, histogram edges
            # and frequent values are its raw values (docs/tenancy.md).
            stats = {"count": stats["count"], "nulls": stats["nulls"], "sensitive": True}
        elif summary.histogram is not None:
            stats["histogram"] = summary.histogram
        elif feature.dtype == Feature.Dtype.STRING and tags.get("top_values"):
            # Opt-in: a string column's frequent values are published only when asked for.
            stats["top"] = [{"value": v, "count": int(n)} for v, n in summary.top or []]
        feature.statistics = stats
    return features


def _numeric(feature: Feature) -> bool:
    return feature.dtype in (Feature.Dtype.INT64, Feature.Dtype.FLOAT64, Feature.Dtype.BOOL)


def _arrow_columns(
    files: Sequence[pq.ParquetFile], features: Sequence[Feature]
) -> dict[str, pa.ChunkedArray]:
    """The features over every partition, read once per file; a partition from before a
    feature existed reads as nulls for it (as DuckDB's union_by_name does)."""
    chunks: dict[str, list[pa.Array]] = {f.name: [] for f in features}
    types = {f.name: ARROW_TYPES.get(f.dtype, pa.string()) for f in features}
    for file in files:
        stored = set(file.schema_arrow.names)
        present = [f.name for f in features if f.name in stored]
        table = file.read(columns=present)
        for name in chunks:
            if name in present:
                chunks[name].extend(c.cast(types[name]) for c in table.column(name).chunks)
            else:
                chunks[name].append(pa.nulls(file.metadata.num_rows, type=types[name]))
    return {name: pa.chunked_array(chunks[name], type=types[name]) for name in chunks}


def _arrow_summary(feature: Feature, column: pa.ChunkedArray) -> _Summary:
    count, nulls = len(column), column.null_count
    distinct = int(pc.count_distinct(column, mode="only_valid").as_py())
    low = high = mean = std = None
    histogram = None
    top = None
    if _numeric(feature):
        values = pc.cast(column, pa.float64())
        bounds = pc.min_max(values)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        mean = pc.mean(values).as_py()
        std = pc.stddev(values, ddof=1).as_py()
        if low is not None and high is not None:
            present = values.drop_null().to_numpy()
            present = present[~np.isnan(present)]
            histogram = _histogram_of(present, float(low), float(high))
    elif feature.dtype == Feature.Dtype.STRING and count > nulls:
        counted = pc.value_counts(column.drop_null()).to_pylist()
        ordered = sorted(counted, key=lambda item: (-item["counts"], item["values"]))
        top = [(item["values"], item["counts"]) for item in ordered[:10]]
    return _Summary(count, nulls, distinct, low, high, mean, std, histogram, top)


def _histogram_shape(low: float, high: float) -> tuple[int, float]:
    bins = HISTOGRAM_BINS if high > low else 1
    return bins, (high - low) / bins if high > low else 1.0


def _histogram_edges(low: float, high: float) -> list[float]:
    bins, width = _histogram_shape(low, high)
    return [low + width * i for i in range(bins)] + [high if high > low else low + 1.0]


def _histogram_of(values: np.ndarray, low: float, high: float) -> dict[str, list[float]]:
    bins, width = _histogram_shape(low, high)
    index = np.minimum(np.floor((values - low) / width).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    return {"edges": _histogram_edges(low, high), "counts": [float(c) for c in counts]}


def _duckdb_summaries(
    group: FeatureGroup, features: Sequence[Feature], paths: Sequence[str]
) -> dict[str, _Summary]:
    summaries = {}
    with connection(label="statistics") as con:
        relation = group_relation(group, paths)
        for feature in features:
            column = ident(feature.name)
            if feature.dtype == Feature.Dtype.BOOL:
                value = f"CAST({column} AS INTEGER)"
            elif _numeric(feature):
                value = f"CAST({column} AS DOUBLE)"
            else:
                value = "NULL"
            row = con.execute(
                f"SELECT count(*), count(*) - count({column}), min({value}), max({value}), "
                f"avg({value}), stddev_samp({value}), count(DISTINCT {column}) FROM {relation}"
            ).fetchone()
            assert row is not None
            count, nulls, low, high, mean, std, distinct = row
            histogram = top = None
            if value != "NULL" and low is not None and high is not None:
                histogram = _histogram(con, relation, value, float(low), float(high))
            elif feature.dtype == Feature.Dtype.STRING:
                top = con.execute(
                    f"SELECT {column}, count(*) AS n FROM {relation} WHERE {column} IS NOT NULL "
                    "GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10"
                ).fetchall()
            summaries[feature.name] = _Summary(
                int(count), int(nulls), int(distinct), low, high, mean, std, histogram, top
            )
    return summaries


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if number != number else number  # NaN has no JSON form


def _histogram(
    con: duckdb.DuckDBPyConnection, relation: str, value: str, low: float, high: float
) -> dict[str, list[float]]:
    bins, width = _histogram_shape(low, high)
    rows = con.execute(
        f"SELECT least(CAST(floor(({value} - ?) / ?) AS BIGINT), ?) AS b, count(*) "
        f"FROM {relation} WHERE {value} IS NOT NULL AND NOT isnan({value}) GROUP BY b",
        [low, width, bins - 1],
    ).fetchall()
    counts = [0] * bins
    for index, count in rows:
        counts[int(index)] += int(count)
    return {"edges": _histogram_edges(low, high), "counts": [float(c) for c in counts]}


def group_summary(*, group: FeatureGroup) -> dict[str, Any]:
    """Row count and freshness (when the newest row became available) from partition metadata."""
    from django.db.models import Max, Min, Sum

    agg = group.partitions.aggregate(
        rows=Sum("rows"),
        newest_available=Max("max_available_at"),
        newest_event=Max("max_event_timestamp"),
        oldest_event=Min("min_event_timestamp"),
    )
    return {**agg, "rows": agg["rows"] or 0, "partitions": group.partitions.count()}
