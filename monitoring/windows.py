"""Live windows: a model's logged traffic per hour or day, per version and role, profiled and
compared with each version's reference.

The prediction log's Parquet partitions of the range are read by DuckDB, and the figures are
aggregated in SQL, one pass per version over every column at once: rows, requests, nulls,
counts per reference bin (numeric) or per reference category (text), values outside the
reference's [min, max], values not among its categories. A reservoir sample (≤ `SAMPLE_ROWS`
per window, role and column) feeds the two-sample KS test. Drift figures (monitoring/drift.py)
are set when a column has at least `MIN_DRIFT_ROWS` non-null live values: fewer make PSI noisy
(its expected value on unshifted data is about (bins - 1) / rows), and a quiet hour would then
raise false alarms.

Per column (and per output: `prediction`, `proba__<class>`) a window holds
`{"rows", "null_rate", "out_of_range", "unknown_categories", "psi", "ks", "ks_pvalue", "js",
"counts", "categories"}` (monitoring/models.py), with:
- `null_rate`: nulls / rows; `out_of_range`: share of the non-null values outside the
  reference's [min, max]; `unknown_categories`: share of the non-null values not among the
  reference's categories (its `MAX_CATEGORIES` most frequent, when it had more);
- `psi` on the reference's bins (numeric) or its categories, the values outside them counted
  in one more category (`profiles.OTHER`); `ks`/`ks_pvalue` (numeric); `js` (text).
"""

# SQL is built from quoted identifiers (`ident`), quoted literals (`literal`) and numbers only.
# ruff: noqa: S608

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd
from django.core.files.storage import default_storage
from django.db import transaction

from features.offline import ident, literal, local_paths, parquet_scan
from monitoring import drift, profiles, reference
from monitoring.models import MonitoringWindow
from registry.models import ModelVersion, RegisteredModel
from serving import predictionlog
from serving import selectors as serving_selectors

logger = logging.getLogger(__name__)

SAMPLE_ROWS = 20_000
MIN_DRIFT_ROWS = 200
LOG_ROOT = "prediction-log"
PRIMARY = "primary"


def window_floor(moment: datetime, granularity: str) -> datetime:
    """The start of the UTC hour or day holding `moment`."""
    moment = moment.astimezone(UTC)
    if granularity == MonitoringWindow.Granularity.DAY:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def window_length(granularity: str) -> timedelta:
    return (
        timedelta(days=1) if granularity == MonitoringWindow.Granularity.DAY else timedelta(hours=1)
    )


def partitions(model_id: int, start: datetime, end: datetime) -> list[str]:
    """Storage names of the model's log partitions overlapping [start, end)."""
    named = getattr(predictionlog, "partition_names", None)
    if named is not None:
        return list(named(model_id, start, end))
    # The log's layout (`prediction-log/model=<id>/date=<d>/hour=<h>/<file>`), listed per hour.
    names: list[str] = []
    hour = window_floor(start, MonitoringWindow.Granularity.HOUR)
    while hour < end:
        folder = f"{LOG_ROOT}/model={model_id}/date={hour:%Y-%m-%d}/hour={hour:%H}"
        try:
            _, files = default_storage.listdir(folder)
        except FileNotFoundError:
            files = []
        names += [f"{folder}/{name}" for name in sorted(files) if name.endswith(".parquet")]
        hour += timedelta(hours=1)
    return names


def _rejections(model_id: int, start: datetime, end: datetime) -> dict[Any, dict[str, int]]:
    """{version number or None: {field: 4xx answers naming it}} from the serving layer."""
    count = getattr(serving_selectors, "rejections", None)
    if count is None:
        return {}
    return dict(count(model_id, start, end) or {})


@dataclass
class _Column:
    """One column's SQL expressions and what its figures are compared with."""

    name: str  # input column or output name
    logged: str  # its column in the log
    kind: str
    profile: dict[str, Any] | None
    select: list[str] = field(default_factory=list)


def _value(column: _Column) -> str:
    cast = "VARCHAR" if column.kind == "categorical" else "DOUBLE"
    return f"TRY_CAST({ident(column.logged)} AS {cast})"


def _expressions(column: _Column, index: int) -> list[str]:
    """SQL aggregates of a column, named c<index>_<figure>."""
    value = _value(column)
    out = [f"count({value}) AS c{index}_present"]
    profile = column.profile
    if profile is None:
        return out
    if column.kind == "numeric" and profile.get("min") is not None:
        inner = profiles.inner_edges(profile)
        cases = " ".join(f"WHEN {value} < {edge!r} THEN {k}" for k, edge in enumerate(inner))
        out.append(
            f"histogram(CASE WHEN {value} IS NULL THEN NULL {cases} ELSE {len(inner)} END) "
            f"AS c{index}_bins"
        )
        out.append(
            f"count(*) FILTER (WHERE {value} < {float(profile['min'])!r} "
            f"OR {value} > {float(profile['max'])!r}) AS c{index}_outside"
        )
    elif column.kind == "categorical":
        known = [c for c in profile.get("categories", {}) if c != profiles.OTHER]
        listed = ", ".join(literal(c) for c in known) or "NULL"
        out.append(
            f"histogram(CASE WHEN {value} IS NULL THEN NULL WHEN {value} IN ({listed}) "
            f"THEN {value} ELSE {literal(profiles.OTHER)} END) AS c{index}_categories"
        )
    return out


def _columns_of(version: ModelVersion, logged: set[str], profile: dict[str, Any]) -> list[_Column]:
    found = []
    for name, kind in profiles.input_kinds(version).items():
        if f"in__{name}" in logged:
            found.append(
                _Column(name, f"in__{name}", kind, (profile.get("columns") or {}).get(name))
            )
    for name, kind in profiles.output_kinds(version).items():
        if f"out__{name}" in logged:
            found.append(
                _Column(name, f"out__{name}", kind, (profile.get("outputs") or {}).get(name))
            )
    return found


def _figures(
    column: _Column,
    row: dict[str, Any],
    index: int,
    *,
    rows: int,
    live_sample: pd.DataFrame | None,
    reference_sample: pd.DataFrame | None,
) -> dict[str, Any]:
    """A column's figures in one window from its aggregates (`row`) and samples."""
    present = int(row[f"c{index}_present"] or 0)
    figures: dict[str, Any] = {
        "rows": rows,
        "null_rate": (rows - present) / rows if rows else 0.0,
    }
    profile = column.profile
    if profile is None:
        return figures
    enough = present >= MIN_DRIFT_ROWS
    if column.kind == "numeric" and profile.get("min") is not None:
        bins = dict(row[f"c{index}_bins"] or {})
        counts = [int(bins.get(k, 0)) for k in range(len(profile["counts"]))]
        figures["counts"] = counts
        outside = int(row[f"c{index}_outside"] or 0)
        figures["out_of_range"] = outside / present if present else 0.0
        if enough:
            figures["psi"] = drift.psi(profile["counts"], counts)
            tested = None
            if (
                live_sample is not None
                and reference_sample is not None
                and column.logged in reference_sample
            ):
                tested = drift.ks(reference_sample[column.logged], live_sample[column.logged])
            if tested is not None:
                figures["ks"], figures["ks_pvalue"] = tested
    elif column.kind == "categorical":
        counted = {str(k): int(v) for k, v in (row[f"c{index}_categories"] or {}).items()}
        total = sum(counted.values())
        shares = {k: v / total for k, v in counted.items()} if total else {}
        figures["categories"] = shares
        reference_shares = profile.get("categories", {})
        figures["unknown_categories"] = shares.get(profiles.OTHER, 0.0)
        if enough:
            categories = sorted(set(reference_shares) | set(shares))
            figures["psi"] = drift.psi(
                [reference_shares.get(c, 0.0) for c in categories],
                [shares.get(c, 0.0) for c in categories],
            )
            figures["js"] = drift.js(reference_shares, shares)
    return figures


@contextmanager
def _connection() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        yield connection
    finally:
        connection.close()


def _stamp(moment: datetime) -> str:
    return literal(moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00"))


@dataclass
class _Group:
    """The aggregates of one version's traffic in one window and role."""

    version: ModelVersion
    role: str
    start: datetime
    rows: int = 0
    requests: int = 0
    columns: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


def _version_groups(
    connection: duckdb.DuckDBPyConnection,
    scan: str,
    *,
    version: ModelVersion,
    logged: set[str],
    granularity: str,
    where: str,
) -> list[_Group]:
    """Aggregate one version's rows per window and role, and compare them with its reference."""
    found = reference.reference_profile(version)
    profile = found.profile if found is not None else {}
    reference_sample = reference.reference_sample(found) if found is not None else None
    columns = _columns_of(version, logged, profile)
    unit = "day" if granularity == MonitoringWindow.Granularity.DAY else "hour"
    aggregates = [
        "count(*) AS n_rows",
        "count(DISTINCT request_id) AS n_requests" if "request_id" in logged else "0 AS n_requests",
    ]
    for index, column in enumerate(columns):
        aggregates += _expressions(column, index)
    sql = (
        f"SELECT epoch(date_trunc('{unit}', ts)) AS bucket, role, {', '.join(aggregates)} "
        f"FROM {scan} WHERE {where} AND version = {int(version.version)} GROUP BY bucket, role"
    )
    cursor = connection.execute(sql)
    names = [d[0] for d in cursor.description]
    groups = []
    numeric = [c for c in columns if c.kind == "numeric" and c.profile is not None]
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        start = datetime.fromtimestamp(float(row["bucket"]), tz=UTC)
        role = str(row["role"] or PRIMARY)
        rows = int(row["n_rows"])
        live_sample = None
        if numeric and reference_sample is not None:
            live_sample = _sample(
                connection,
                scan,
                numeric,
                version=version,
                role=role,
                start=start,
                end=start + window_length(granularity),
            )
        group = _Group(version=version, role=role, start=start, rows=rows)
        group.requests = int(row["n_requests"] or 0)
        for index, column in enumerate(columns):
            figures = _figures(
                column,
                row,
                index,
                rows=rows,
                live_sample=live_sample,
                reference_sample=reference_sample,
            )
            target = group.columns if column.logged.startswith("in__") else group.outputs
            target[column.name] = figures
        groups.append(group)
    return groups


def _sample(
    connection: duckdb.DuckDBPyConnection,
    scan: str,
    columns: list[_Column],
    *,
    version: ModelVersion,
    role: str,
    start: datetime,
    end: datetime,
) -> pd.DataFrame:
    """A reservoir sample (≤ SAMPLE_ROWS rows, fixed seed) of a window's numeric columns."""
    selected = ", ".join(f"{_value(c)} AS {ident(c.logged)}" for c in columns)
    sql = (
        f"SELECT * FROM (SELECT {selected} FROM {scan} "
        f"WHERE ts >= {_stamp(start)} AND ts < {_stamp(end)} "
        f"AND version = {int(version.version)} AND role = {literal(role)}) "
        f"USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) REPEATABLE (0)"
    )
    return connection.execute(sql).df()


def windows_compute(
    *, model: RegisteredModel, granularity: str, start: datetime, end: datetime
) -> list[MonitoringWindow]:
    """Create or update the windows (UTC hours or days overlapping [start, end)) of every version
    and role with logged traffic or 4xx rejections in them: rows, requests, per input column and
    output its quality and drift figures, and the rejections per field. Skew and accuracy are
    left as they are (computed by monitoring's skew and accuracy steps)."""
    if granularity not in MonitoringWindow.Granularity.values:
        raise ValueError(f"granularity must be one of {MonitoringWindow.Granularity.values}")
    length = window_length(granularity)
    first = window_floor(start, granularity)
    last = window_floor(end - timedelta(microseconds=1), granularity) + length
    names = partitions(model.pk, first, last)
    versions = {
        v.version: v for v in ModelVersion.objects.filter(model=model).select_related("model")
    }
    groups: list[_Group] = []
    if names:
        with local_paths(names) as paths, _connection() as connection:
            scan = parquet_scan(paths)
            logged = {d[0] for d in connection.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
            where = f"ts >= {_stamp(first)} AND ts < {_stamp(last)}"
            numbers = [
                int(v)
                for (v,) in connection.execute(
                    f"SELECT DISTINCT version FROM {scan} WHERE {where}"
                ).fetchall()
                if v is not None
            ]
            for number in sorted(numbers):
                version = versions.get(number)
                if version is None:
                    continue  # a deleted version's leftover entries
                groups += _version_groups(
                    connection,
                    scan,
                    version=version,
                    logged=logged,
                    granularity=granularity,
                    where=where,
                )
    return _store(
        model=model,
        granularity=granularity,
        groups=groups,
        versions=versions,
        first=first,
        last=last,
    )


def _store(
    *,
    model: RegisteredModel,
    granularity: str,
    groups: list[_Group],
    versions: dict[int, ModelVersion],
    first: datetime,
    last: datetime,
) -> list[MonitoringWindow]:
    length = window_length(granularity)
    keyed = {(g.version.version, g.role, g.start): g for g in groups}
    rejected: dict[tuple[int, datetime], dict[str, int]] = {}
    moment = first
    while moment < last:
        for number, fields in _rejections(model.pk, moment, moment + length).items():
            if number is None or number not in versions or not fields:
                continue
            rejected[(int(number), moment)] = {str(k): int(v) for k, v in fields.items()}
            keyed.setdefault(
                (int(number), PRIMARY, moment),
                _Group(version=versions[int(number)], role=PRIMARY, start=moment),
            )
        moment += length
    stored = []
    with transaction.atomic():
        for (number, role, start), group in sorted(
            keyed.items(), key=lambda item: (item[0][2], item[0][0], item[0][1])
        ):
            window, _ = MonitoringWindow.objects.update_or_create(
                version=group.version,
                role=role,
                granularity=granularity,
                start=start,
                defaults={
                    "model": model,
                    "end": start + length,
                    "requests": group.requests,
                    "rows": group.rows,
                    "columns": group.columns,
                    "outputs": group.outputs,
                    "rejections": rejected.get((number, start), {}) if role == PRIMARY else {},
                },
            )
            stored.append(window)
    return stored
