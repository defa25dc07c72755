"""Point-in-time training sets, computed by DuckDB out of core.

For an entity row at time t and a feature group, DESIGN §6 asks for the row with the greatest
`event_timestamp` among rows with event_timestamp ≤ t, available_at ≤ t and
event_timestamp ≥ t - ttl (ties: greatest available_at); no match gives NULL.

A row is visible at t exactly when greatest(event_timestamp, available_at) ≤ t. So per entity
key we order rows by that "visible from" instant and keep a running arg-max of
(event_timestamp, available_at); an ASOF join on the visible-from instant then picks, for each
entity row, the best row visible at t. If that row is older than the TTL, every other visible
row is older still, so a NULL is the right answer. One sort and one ASOF join per group: the
same shape of work as a plain ASOF join on event time, without its leak.
"""

# DuckDB SQL is assembled from quoted identifiers and literals (offline.ident/literal); user
# values never reach it unquoted, and the one user query is sandboxed (transformations.py).
# ruff: noqa: S608

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from features import offline
from features.ingestion import AVAILABLE, EVENT, file_format
from features.models import Feature, FeatureGroup
from mlplatform.errors import ApplicationError

ENTITIES = "__entities"
CONTENT_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv"}


@dataclass
class Column:
    feature: Feature
    output: str


def output_columns(
    features: Sequence[Feature], *, full_names: bool, reserved: Sequence[str] = ()
) -> list[Column]:
    """Plain feature names, or `group__feature` when asked or when a name would collide."""
    counts: dict[str, int] = {}
    for feature in features:
        counts[feature.name] = counts.get(feature.name, 0) + 1
    taken = set(reserved)
    columns = []
    for feature in features:
        plain = feature.name
        clash = counts[plain] > 1 or plain in taken
        name = f"{feature.group.name}__{plain}" if full_names or clash else plain
        columns.append(Column(feature=feature, output=name))
    return columns


def entities_load(
    con: duckdb.DuckDBPyConnection, *, rows: list[dict[str, Any]] | None, path: Path | None
) -> list[str]:
    """Load the entity frame as a table with its input order in `__row`; returns its columns."""
    if rows is not None:
        if not rows:
            raise ApplicationError("entities: at least one row is required.")
        if not all(isinstance(row, dict) for row in rows):
            raise ApplicationError("entities: each row must be an object.")
        try:
            table = pa.Table.from_pylist(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ApplicationError(f"entities: inconsistent value types ({exc}).") from exc
        con.register("__entities_in", table)
        source = "__entities_in"
    elif path is not None:
        reader = "read_parquet" if file_format(path) == "parquet" else "read_csv"
        source = f"{reader}({offline.literal(str(path))})"
    else:
        raise ApplicationError("entities: give `entities` rows or an `entity_file`.")
    try:
        # A table keeps insertion order in rowid, which becomes the output order.
        con.execute(f"CREATE TEMP TABLE __entities_raw AS SELECT * FROM {source}")
    except duckdb.Error as exc:
        raise ApplicationError(f"entity_file: cannot be read ({exc}).") from exc
    described = {row[0]: row[1] for row in con.execute("DESCRIBE __entities_raw").fetchall()}
    columns = list(described)
    if EVENT not in columns:
        raise ApplicationError(f"entities: missing column '{EVENT}'.")
    bad_names = [c for c in columns if c.startswith("__")]
    if bad_names:
        raise ApplicationError(f"entities: column names may not start with '__': {bad_names}.")
    # Timestamps already typed are only brought to UTC (the session's zone); anything else is
    # parsed from its text, so zone-less text reads as UTC and junk gives NULL.
    event_type = described[EVENT]
    if event_type == "TIMESTAMP":
        moment = EVENT
    elif event_type == "TIMESTAMP WITH TIME ZONE":
        moment = f"CAST({EVENT} AS TIMESTAMP)"
    else:
        moment = f"CAST(TRY_CAST(CAST({EVENT} AS VARCHAR) AS TIMESTAMPTZ) AS TIMESTAMP)"
    con.execute(
        f"CREATE TEMP TABLE {ENTITIES} AS SELECT *, rowid AS __row, {moment} AS __t "
        "FROM __entities_raw"
    )
    bad = con.execute(
        f"SELECT __row, {EVENT} FROM {ENTITIES} WHERE __t IS NULL ORDER BY __row LIMIT 1"
    ).fetchone()
    if bad is not None:
        raise ApplicationError(
            f"entities: '{EVENT}' is empty or unparseable at row {int(bad[0]) + 1}: {bad[1]!r}."
        )
    return columns


def build(
    *,
    features: Sequence[Feature],
    output: Path,
    fmt: str,
    full_names: bool = False,
    rows: list[dict[str, Any]] | None = None,
    entity_file: Path | None = None,
    job_id: int | None = None,
) -> int:
    """Write the point-in-time training set to `output`; returns its row count.

    Its queries run under a QueryGuard: the time limit, and with `job_id` a cancel, interrupt
    them.

    Raises:
        ApplicationError: bad entity frame (missing key or timestamp), unknown format, or a
            query past its time or spill limit.
        jobs.JobStopped: the job was cancelled meanwhile.
    """
    if fmt not in CONTENT_TYPES:
        raise ApplicationError(f"format: must be 'parquet' or 'csv', got {fmt!r}.")
    if not features:
        raise ApplicationError("features: at least one feature is required.")
    groups: list[FeatureGroup] = []
    for feature in features:
        if feature.group not in groups:
            groups.append(feature.group)
    with contextlib.ExitStack() as stack:
        con = stack.enter_context(offline.connection(label=f"training-set-{job_id or 'inline'}"))
        guard = stack.enter_context(offline.QueryGuard(con, job_id=job_id))
        with guard.query():
            entity_columns = entities_load(con, rows=rows, path=entity_file)
        for group in groups:
            missing = [k for k in group.entity.join_keys if k not in entity_columns]
            if missing:
                raise ApplicationError(
                    f"entities: missing join key(s) {missing} needed by group '{group.name}'."
                )
        columns = output_columns(features, full_names=full_names, reserved=entity_columns)
        ctes = []
        joins = []
        values: dict[int, str] = {}  # output column position -> its value in the group's CTE
        for index, group in enumerate(groups):
            paths = stack.enter_context(offline.local_paths(offline.partition_names(group)))
            positions = [i for i, c in enumerate(columns) if c.feature.group_id == group.pk]
            for slot, position in enumerate(positions):
                values[position] = f"g{index}.__f{slot}"
            wanted = [columns[i].feature for i in positions]
            ctes.append(_group_cte(index, group, wanted, paths))
            conditions = [
                f"TRY_CAST(e.{offline.ident(k)} AS {_key_type(group, k)}) "
                f"= g{index}.{offline.ident(k)}"
                for k in group.entity.join_keys
            ]
            joins.append(
                f"ASOF LEFT JOIN g{index} ON {' AND '.join(conditions)} AND e.__t >= g{index}.__v"
            )
        select = [
            f"CAST(e.__t AS TIMESTAMPTZ) AS {EVENT}"
            if name == EVENT
            else f"e.{offline.ident(name)}"
            for name in entity_columns
        ]
        for position, column in enumerate(columns):
            index = groups.index(column.feature.group)
            ttl = column.feature.group.ttl_seconds
            fresh = f"g{index}.__v IS NOT NULL"
            if ttl is not None:
                fresh += f" AND g{index}.__e >= e.__t - to_seconds({int(ttl)})"
            select.append(
                f"CASE WHEN {fresh} THEN {values[position]} END AS {offline.ident(column.output)}"
            )
        query = (
            f"WITH {', '.join(ctes)} SELECT {', '.join(select)} FROM {ENTITIES} e "
            f"{' '.join(joins)} ORDER BY e.__row"
        )
        options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER"
        try:
            with guard.query():
                con.execute(f"COPY ({query}) TO {offline.literal(str(output))} ({options})")
        except duckdb.Error as exc:
            problem = offline.query_error(exc)
            if problem is None:
                raise
            raise problem from exc
        count = con.execute(f"SELECT count(*) FROM {ENTITIES}").fetchone()
        return int(count[0]) if count else 0


def _group_cte(index: int, group: FeatureGroup, wanted: Sequence[Feature], paths: list[str]) -> str:
    """The group's rows that can answer a lookup: per key, those that hold the running best.

    Rows are ordered per key by (visible-from, event, available_at, the feature values); a row
    holds the best (event, available_at) seen so far exactly when its event time equals the
    running max of event times (a row earlier in that order with the same event time has an
    equal or smaller available_at, since available_at ≤ visible-from). Of rows sharing a
    visible-from instant only the last is kept, so the ASOF join on visible-from has one
    candidate per instant. Scalar window functions over one sort: no struct is compared.
    """
    keys = [offline.ident(k) for k in group.entity.join_keys]
    relation = offline.group_relation(group, paths)
    visible = f"greatest({EVENT}, {AVAILABLE})"
    values = [offline.ident(f.name) for f in wanted]
    renamed = [f"{value} AS __f{j}" for j, value in enumerate(values)]
    # The feature values only break exact ties of (event, available_at), deterministically.
    order = ", ".join(f"{c} ASC NULLS LAST" for c in (visible, EVENT, AVAILABLE, *values))
    # Only history of keys the request asks about; the window is then as small as it can be.
    key_cast = ", ".join(
        f"TRY_CAST({k} AS {offline.sql_type(group.key_dtypes.get(name, 'string'))}) AS {k}"
        for k, name in zip(keys, group.entity.join_keys, strict=True)
    )
    on = " AND ".join(f"r.{k} = q.{k}" for k in keys)
    outputs = ", ".join([*keys, "__v", "__e", *(f"__f{j}" for j in range(len(values)))])
    return (
        f"g{index} AS (SELECT {outputs} FROM ("
        f"SELECT {', '.join(keys)}, {visible} AS __v, {EVENT} AS __e, "
        f"{', '.join([*renamed, ''])}"
        f"max({EVENT}) OVER __w AS __best, lead({visible}) OVER __w AS __next "
        f"FROM (SELECT r.* FROM {relation} r SEMI JOIN "
        f"(SELECT DISTINCT {key_cast} FROM {ENTITIES}) q ON {on}) "
        f"WINDOW __w AS (PARTITION BY {', '.join(keys)} ORDER BY {order} "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        ") WHERE __e = __best AND (__next IS NULL OR __next > __v))"
    )


def _key_type(group: FeatureGroup, key: str) -> str:
    return offline.sql_type(group.key_dtypes.get(key, "string"))
