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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd
from django.db import transaction

from features import offline
from features.offline import ident, literal, local_paths, parquet_scan
from monitoring import drift, profiles, reference
from monitoring.models import MonitoringWindow
from registry.models import ModelVersion, RegisteredModel
from serving import predictionlog
from serving import selectors as serving_selectors

logger = logging.getLogger(__name__)

SAMPLE_ROWS = 20_000
MIN_DRIFT_ROWS = 200
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
    return predictionlog.partition_names(model_id, start, end)


def _rejections(model_id: int, start: datetime, end: datetime) -> dict[Any, dict[str, int]]:
    """{version number or None: {field: 4xx answers naming it}} from the serving layer."""
    return serving_selectors.rejections(model_id, start, end)


@dataclass
class _Column:
    """One column of the log and what its figures are compared with."""

    name: str  # input column or output name
    logged: str  # its column in the log
    kind: str
    profile: dict[str, Any] | None
    logged_type: str = ""


def _value(column: _Column) -> str:
    """The column as a number (numeric) or text (categorical), whatever type the log gave it."""
    wanted = "VARCHAR" if column.kind == "categorical" else "DOUBLE"
    if column.logged_type == wanted:
        return ident(column.logged)
    return f"TRY_CAST({ident(column.logged)} AS {wanted})"


def _code(column: _Column) -> str:
    """SQL giving each row's bin code: NULL for a null; for a numeric column with a reference,
    -1 below its min, k for bin k, `bins` above its max; for a text column, the value if the
    reference knows it, else `profiles.OTHER`; without a reference, 0."""
    value = _value(column)
    profile = column.profile
    if profile is None or (column.kind == "numeric" and profile.get("min") is None):
        return f"CASE WHEN {value} IS NULL THEN NULL ELSE 0 END"
    if column.kind == "categorical":
        known = [c for c in profile.get("categories", {}) if c != profiles.OTHER]
        listed = ", ".join(literal(c) for c in known) or "NULL"
        return (
            f"CASE WHEN {value} IS NULL THEN NULL WHEN {value} IN ({listed}) THEN {value} "
            f"ELSE {literal(profiles.OTHER)} END"
        )
    inner = profiles.inner_edges(profile)
    low, high = float(profile["min"]), float(profile["max"])
    cases = " ".join(f"WHEN {value} < {edge!r} THEN {k}" for k, edge in enumerate(inner))
    return (
        f"CASE WHEN {value} IS NULL THEN NULL WHEN {value} < {low!r} THEN -1 {cases} "
        f"WHEN {value} <= {high!r} THEN {len(inner)} ELSE {len(inner) + 1} END"
    )


def _columns_of(
    version: ModelVersion, logged: dict[str, str], profile: dict[str, Any]
) -> list[_Column]:
    found = []
    for name, kind in profiles.input_kinds(version).items():
        column = f"in__{name}"
        if column in logged:
            reference_profile = (profile.get("columns") or {}).get(name)
            found.append(_Column(name, column, kind, reference_profile, logged[column]))
    for name, kind in profiles.output_kinds(version).items():
        column = f"out__{name}"
        if column in logged:
            reference_profile = (profile.get("outputs") or {}).get(name)
            found.append(_Column(name, column, kind, reference_profile, logged[column]))
    return found


def _figures(
    column: _Column,
    codes: dict[Any, int],
    *,
    rows: int,
    live_sample: pd.DataFrame | None,
    reference_sample: pd.DataFrame | None,
) -> dict[str, Any]:
    """A column's figures in one window from its rows per bin code and the samples."""
    present = sum(count for code, count in codes.items() if code is not None)
    figures: dict[str, Any] = {
        "rows": rows,
        "null_rate": (rows - present) / rows if rows else 0.0,
    }
    profile = column.profile
    if profile is None:
        return figures
    enough = present >= MIN_DRIFT_ROWS
    if column.kind == "numeric" and profile.get("min") is not None:
        bins = len(profile["counts"])
        counts = [int(codes.get(str(k), 0)) for k in range(bins)]
        below, above = int(codes.get("-1", 0)), int(codes.get(str(bins), 0))
        counts[0] += below
        counts[-1] += above
        figures["counts"] = counts
        figures["out_of_range"] = (below + above) / present if present else 0.0
        if enough:
            figures["psi"] = drift.psi(profile["counts"], counts)
            tested = None
            if (
                live_sample is not None
                and reference_sample is not None
                and column.logged in reference_sample
                and column.logged in live_sample
            ):
                tested = drift.ks(reference_sample[column.logged], live_sample[column.logged])
            if tested is not None:
                figures["ks"], figures["ks_pvalue"] = tested
    elif column.kind == "categorical":
        counted = {str(k): int(v) for k, v in codes.items() if k is not None}
        shares = {k: v / present for k, v in counted.items()} if present else {}
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


def _stamp(moment: datetime) -> str:
    return literal(moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00"))


def _bucket(granularity: str) -> str:
    """SQL for a row's window, as whole UTC hours or days since the epoch (integer arithmetic
    on the timestamp: no calendar lookups per row)."""
    micros = int(window_length(granularity).total_seconds()) * 1_000_000
    return f"epoch_us(ts) // {micros}"


def _bucket_start(number: int, granularity: str) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + number * window_length(granularity)


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
    logged: dict[str, str],
    granularity: str,
    where: str,
) -> list[_Group]:
    """Aggregate one version's rows per window and role, and compare them with its reference.

    One query counts rows and requests; then one per column counts its rows per bin code (a
    small integer or known category, grouped by hash: far faster in DuckDB than map-building
    aggregates over all columns at once)."""
    found = reference.reference_profile(version)
    profile = found.profile if found is not None else {}
    reference_sample = reference.reference_sample(found) if found is not None else None
    columns = _columns_of(version, logged, profile)
    bucket = _bucket(granularity)
    rows_of = f"{scan} WHERE {where} AND version = {int(version.version)}"
    requests = "count(DISTINCT request_id)" if "request_id" in logged else "0"
    groups: dict[tuple[int, str], _Group] = {}
    for number, role, rows, asked in connection.execute(
        f"SELECT {bucket} AS bucket, coalesce(role, {literal(PRIMARY)}) AS role, count(*), "
        f"{requests} FROM {rows_of} GROUP BY ALL"
    ).fetchall():
        start = _bucket_start(int(number), granularity)
        groups[(int(number), str(role))] = _Group(
            version=version, role=str(role), start=start, rows=int(rows), requests=int(asked)
        )
    codes: dict[tuple[int, str], list[dict[Any, int]]] = {
        key: [{} for _ in columns] for key in groups
    }
    for index, column in enumerate(columns):
        for number, role, code, count in connection.execute(
            f"SELECT {bucket} AS bucket, coalesce(role, {literal(PRIMARY)}) AS role, "
            f"{_code(column)} AS code, count(*) FROM {rows_of} GROUP BY ALL"
        ).fetchall():
            codes[(int(number), str(role))][index][None if code is None else str(code)] = int(count)
    numeric = [c for c in columns if c.kind == "numeric" and c.profile is not None]
    for key, group in groups.items():
        live_sample = None
        if numeric and reference_sample is not None:
            live_sample = _sample(
                connection,
                scan,
                numeric,
                version=version,
                role=group.role,
                start=group.start,
                end=group.start + window_length(granularity),
            )
        for index, column in enumerate(columns):
            figures = _figures(
                column,
                codes[key][index],
                rows=group.rows,
                live_sample=live_sample,
                reference_sample=reference_sample,
            )
            target = group.columns if column.logged.startswith("in__") else group.outputs
            target[column.name] = figures
    return list(groups.values())


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
        with local_paths(names) as paths, offline.connection(label="monitoring") as connection:
            scan = parquet_scan(paths)
            described = connection.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
            logged = {str(d[0]): str(d[1]) for d in described}
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
