"""Transformations: a feature group defined by DuckDB SQL over data sources.

Each source is loaded into a table named after it (hyphens become underscores), then external
access is switched off before the user's SQL runs, so the SQL can read its inputs and nothing
else: no files, no URLs, no COPY, no ATTACH. The result must have the entity's join keys,
`event_timestamp` and the group's features (and may give `available_at`). Only rows not yet in
the group's offline store are appended, so a rerun adds what is new and rewrites nothing.
"""

# DuckDB SQL is assembled from quoted identifiers and literals (offline.ident/literal); user
# values never reach it unquoted, and the one user query is sandboxed (transformations.py).
# ruff: noqa: S608

import tempfile
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from features import offline, sources
from features.ingestion import AVAILABLE, EVENT, IngestError, file_format, frame_validate
from features.models import DataSource, FeatureGroup
from mlplatform.errors import ApplicationError


class TransformationError(ApplicationError):
    pass


def table_name(source: DataSource) -> str:
    return source.name.replace("-", "_")


def _load_source(con: duckdb.DuckDBPyConnection, source: DataSource, workdir: Path) -> None:
    name = offline.ident(table_name(source))
    if source.kind == DataSource.Kind.SQL_TABLE:
        try:
            table = sources.sql_table_check(source.path)
        except ApplicationError as exc:
            raise TransformationError(f"source '{source.name}': {exc.message}") from exc
        with sources.sql_connection().cursor() as cursor:
            cursor.execute(f"SELECT * FROM {table}")
            columns = [c[0] for c in cursor.description]
            frame = pd.DataFrame(cursor.fetchall(), columns=columns)
        con.register("__source_frame", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM __source_frame")
        con.unregister("__source_frame")
        return
    storage_name = source.file.name
    if source.kind == DataSource.Kind.STORAGE_PATH:
        try:
            storage_name = sources.storage_path_check(source.path, owner=source.owner)
        except ApplicationError as exc:
            raise TransformationError(f"source '{source.name}': {exc.message}") from exc
    if not storage_name:
        raise TransformationError(f"source '{source.name}' has no file or path.")
    with offline.local_paths([storage_name]) as (path,):
        local = Path(path)
        reader = "read_parquet" if file_format(local) == "parquet" else "read_csv"
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {reader}({offline.literal(path)})")


def run(
    *,
    group: FeatureGroup,
    now: datetime,
    job_id: int | None = None,
    query_timeout: float | None = None,
) -> dict[str, int]:
    """Run the group's SQL and append new rows as a partition; returns row counts.

    With `job_id`, a cancel interrupts the running query and nothing is committed after it, and
    the job is marked succeeded in the transaction that commits the partition. Each query may
    run `query_timeout` seconds (default MLPLATFORM_QUERY_TIMEOUT_SECONDS).

    Raises:
        TransformationError: no SQL, a source that cannot load, SQL that fails (including any
            attempt to read outside its inputs), or a result that does not match the group.
        offline.QueryTimeout: a query ran past MLPLATFORM_QUERY_TIMEOUT_SECONDS.
        jobs.JobStopped: the job was cancelled meanwhile.
    """
    sql = group.transformation_sql.strip().rstrip(";").strip()
    if not sql:
        raise TransformationError(f"Feature group '{group.name}' has no transformation SQL.")
    sources = list(group.transformation_sources.all())
    if group.source and group.source not in sources:
        sources.append(group.source)
    keys = list(group.entity.join_keys)
    with (
        tempfile.TemporaryDirectory() as tmp,
        offline.connection(label=f"transform-{job_id or 'inline'}") as con,
        offline.QueryGuard(con, job_id=job_id, timeout=query_timeout) as guard,
        offline.local_paths(offline.partition_names(group)) as existing,
    ):
        try:
            for source in sources:
                with guard.query():
                    _load_source(con, source, Path(tmp))
            key_sql = ", ".join(offline.ident(k) for k in keys)
            if existing:
                with guard.query():
                    con.execute(
                        f"CREATE TABLE __existing AS SELECT DISTINCT {key_sql}, {EVENT} "
                        f"FROM {offline.parquet_scan(existing)}"
                    )
            # From here on the SQL sees the loaded tables and nothing else.
            con.execute("SET enable_external_access=false")
            con.execute("SET lock_configuration=true")
            with guard.query():
                con.execute(f"CREATE TABLE __result AS SELECT * FROM ({sql})")
                frame = con.execute("SELECT * FROM __result").df()
        except duckdb.Error as exc:
            raise offline.query_error(exc) or TransformationError(
                f"Transformation SQL failed: {exc}"
            ) from exc
        produced = len(frame)
        if produced == 0:
            return {"produced": 0, "appended": 0}
        explicit = "column" in (group.availability or {})
        if not explicit:
            frame = frame.drop(columns=[AVAILABLE], errors="ignore")
        try:
            validated = frame_validate(
                group=group, frame=_as_utc(frame), now=now, with_available=explicit
            )
        except IngestError as exc:
            raise TransformationError(
                "Transformation result does not match the group: " + "; ".join(exc.errors)
            ) from exc
        guard.check()
        table = validated.table
        con.register("__new", table)
        if existing:
            on = " AND ".join(f"n.{offline.ident(k)} = x.{offline.ident(k)}" for k in keys)
            with guard.query():
                table = con.sql(
                    f"SELECT n.* FROM __new n ANTI JOIN __existing x "
                    f"ON {on} AND n.{EVENT} = x.{EVENT}"
                ).to_arrow_table()
        result = {"produced": produced, "appended": table.num_rows}
        if table.num_rows:
            offline.partition_commit(
                group=group,
                table=table,
                origin="transformation",
                job_id=job_id,
                job_result=result,
                key_dtypes=validated.key_dtypes,
                guard=guard,
            )
        elif group.key_dtypes != validated.key_dtypes:
            FeatureGroup.objects.filter(pk=group.pk).update(key_dtypes=validated.key_dtypes)
            group.key_dtypes = validated.key_dtypes
    return result


def _as_utc(frame: pd.DataFrame) -> pd.DataFrame:
    """DuckDB hands back naive timestamps; in the offline store they are UTC by convention."""
    frame = frame.copy()
    for column in (EVENT, AVAILABLE):
        if (
            column in frame.columns
            and pd.api.types.is_datetime64_any_dtype(frame[column].dtype)
            and getattr(frame[column].dtype, "tz", None) is None
        ):
            frame[column] = frame[column].dt.tz_localize("UTC")
    return frame
