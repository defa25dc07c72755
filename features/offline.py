"""The offline store: immutable Parquet partitions in Django storage, read by DuckDB.

Each ingestion or transformation run adds one partition; nothing is ever rewritten, so a past
training set can be recomputed exactly. Local FileSystemStorage paths are handed to DuckDB
directly; remote storage is copied to a temporary folder first.
"""

# DuckDB SQL is assembled from quoted identifiers and literals (offline.ident/literal); user
# values never reach it unquoted, and the one user query is sandboxed (transformations.py).
# ruff: noqa: S608

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage

from features.ingestion import AVAILABLE, EVENT
from features.models import Feature, FeatureGroup, OfflinePartition

HISTOGRAM_BINS = 20
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


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a memory cap and a spill folder, so big joins go out of core."""
    con = duckdb.connect(":memory:")
    spill = Path(settings.VAR_DIR) / "duckdb-tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute("SET TimeZone='UTC'")
    con.execute(f"SET memory_limit={literal(settings.MLPLATFORM_DUCKDB_MEMORY_LIMIT)}")
    con.execute(f"SET threads={int(settings.MLPLATFORM_DUCKDB_THREADS)}")
    con.execute(f"SET temp_directory={literal(str(spill))}")
    con.execute("SET preserve_insertion_order=true")
    con.execute("SET enable_progress_bar=false")
    return con


def partition_write(
    *, group: FeatureGroup, table: pa.Table, origin: str, job_id: int | None = None
) -> OfflinePartition:
    """Store `table` as a new partition of the group (the caller holds the transaction)."""
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S")
    name = f"features/offline/{group.name}/part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "part.parquet"
        pq.write_table(table, local, compression="zstd", row_group_size=128 * 1024)
        with local.open("rb") as stream:
            saved = default_storage.save(name, File(stream, name=local.name))
    events = table.column(EVENT)
    bounds = pa.compute.min_max(events)
    return OfflinePartition.objects.create(
        group=group,
        path=saved,
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
    features = list(group.features.all())
    names = partition_names(group)
    if not features:
        return
    with local_paths(names) as paths, contextlib.closing(connect()) as con:
        relation = group_relation(group, paths)
        for feature in features:
            column = ident(feature.name)
            numeric = feature.dtype in (Feature.Dtype.INT64, Feature.Dtype.FLOAT64)
            if feature.dtype == Feature.Dtype.BOOL:
                value = f"CAST({column} AS INTEGER)"
            elif numeric:
                value = f"CAST({column} AS DOUBLE)"
            else:
                value = "NULL"
            row = con.execute(
                f"SELECT count(*), count(*) - count({column}), min({value}), max({value}), "
                f"avg({value}), stddev_samp({value}), count(DISTINCT {column}) FROM {relation}"
            ).fetchone()
            assert row is not None
            count, nulls, low, high, mean, std, distinct = row
            stats: dict[str, Any] = {
                "count": int(count),
                "nulls": int(nulls),
                "distinct": int(distinct),
                "min": _num(low),
                "max": _num(high),
                "mean": _num(mean),
                "std": _num(std),
            }
            if value != "NULL" and low is not None and high is not None:
                stats["histogram"] = _histogram(con, relation, value, float(low), float(high))
            elif feature.dtype == Feature.Dtype.STRING:
                top = con.execute(
                    f"SELECT {column}, count(*) AS n FROM {relation} WHERE {column} IS NOT NULL "
                    "GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10"
                ).fetchall()
                stats["top"] = [{"value": v, "count": int(n)} for v, n in top]
            feature.statistics = stats
            feature.save(update_fields=["statistics"])


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if number != number else number  # NaN has no JSON form


def _histogram(
    con: duckdb.DuckDBPyConnection, relation: str, value: str, low: float, high: float
) -> dict[str, list[float]]:
    bins = HISTOGRAM_BINS if high > low else 1
    width = (high - low) / bins if high > low else 1.0
    rows = con.execute(
        f"SELECT least(CAST(floor(({value} - ?) / ?) AS BIGINT), ?) AS b, count(*) "
        f"FROM {relation} WHERE {value} IS NOT NULL AND NOT isnan({value}) GROUP BY b",
        [low, width, bins - 1],
    ).fetchall()
    counts = [0] * bins
    for index, count in rows:
        counts[int(index)] += int(count)
    edges = [low + width * i for i in range(bins)] + [high if high > low else low + 1.0]
    return {"edges": edges, "counts": [float(c) for c in counts]}


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
