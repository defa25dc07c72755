"""The logged predictions a monitoring job reads: the prediction log's Parquet partitions
(`prediction-log/model=<id>/date=<YYYY-MM-DD>/hour=<HH>/…parquet`, written by
`serving.predictionlog`) as one DuckDB view, `log`, limited to a time range.

Each file holds one version's entries, so files differ in their columns: they are read by name
(`union_by_name`), and a caller asks `LogView.columns` which ones exist before naming them.
"""

# DuckDB SQL is assembled from quoted identifiers and literals (offline.ident/literal) only.
# ruff: noqa: S608

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from features import offline
from monitoring import windows

VIEW = "log"


@dataclass
class LogView:
    """An open connection with the view `log` over the range's entries."""

    con: duckdb.DuckDBPyConnection
    columns: list[str]
    files: int

    def has(self, column: str) -> bool:
        return column in self.columns


def _utc(moment: datetime) -> str:
    return offline.literal(moment.astimezone(UTC).isoformat(sep=" "))


@contextlib.contextmanager
def log_view(*, model_id: int, start: datetime, end: datetime, label: str) -> Iterator[LogView]:
    """The model's log entries with `start <= ts < end` as the view `log` (no files: `files`
    is 0 and the view does not exist)."""
    names = windows.partitions(model_id, start, end)
    with contextlib.ExitStack() as stack:
        con = stack.enter_context(offline.connection(label=label))
        if not names:
            yield LogView(con=con, columns=[], files=0)
            return
        paths = stack.enter_context(offline.local_paths(names))
        con.execute(
            f"CREATE TEMP VIEW {VIEW} AS SELECT * FROM {offline.parquet_scan(paths)} "
            f"WHERE ts >= CAST({_utc(start)} AS TIMESTAMPTZ) "
            f"AND ts < CAST({_utc(end)} AS TIMESTAMPTZ)"
        )
        columns = [row[0] for row in con.execute(f"DESCRIBE {VIEW}").fetchall()]
        yield LogView(con=con, columns=columns, files=len(paths))
