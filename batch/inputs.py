"""Batch scoring's inputs: what a file holds and whether a version can score it.

Reading only what is needed: the header or the Parquet footer at submit (`input_inspect`), one
scan for row boundaries when planning (`csv_offsets`), and one chunk's rows when scoring
(`parquet_blocks`, `csv_blocks`). Checking: the columns against the signature
(`columns_check`) and the options a user gives (`outputs_parse`, `names_parse`,
`format_parse`).
"""

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batch.models import BatchJob, FileFormat
from features.models import Feature
from mlplatform.errors import ApplicationError
from registry.models import ModelVersion

OUTPUTS = ("predict", "predict_proba")
SCAN_BLOCK = 8 * 1024 * 1024
PARQUET_MAGIC = b"PAR1"
EVENT_TIMESTAMP = "event_timestamp"


@dataclass
class InputInfo:
    format: str
    columns: list[str]


@dataclass
class ColumnCheck:
    """The input's columns against the signature: what a user sees before submitting."""

    expected: list[str]
    found: list[str]
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    unknown_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.unknown_ids)

    def message(self) -> str:
        problems = []
        if self.missing:
            problems.append(f"missing column(s) {', '.join(self.missing)}")
        if self.unknown_ids:
            problems.append(f"id column(s) not in the file: {', '.join(self.unknown_ids)}")
        if self.extra:
            problems.append(
                f"column(s) the model does not take: {', '.join(self.extra)} "
                "(name them in id_columns to carry them through)"
            )
        return "The input does not match the model's signature: " + "; ".join(problems) + "."


def _csv_header(stream: IO[bytes]) -> list[str]:
    line = stream.readline(1024 * 1024)
    if not line:
        raise ApplicationError("The input file is empty.", extra={"field": "input"})
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApplicationError(
            "The input's header is not UTF-8 text: upload CSV or Parquet.", extra={"field": "input"}
        ) from exc
    names = next(csv.reader([text.rstrip("\r\n")]), [])
    names = [name.strip() for name in names]
    if not any(names):
        raise ApplicationError("The CSV file has no header row.", extra={"field": "input"})
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ApplicationError(
            f"The CSV header repeats column(s) {', '.join(duplicates)}.", extra={"field": "input"}
        )
    return names


def input_inspect(*, stream: IO[bytes], filename: str = "") -> InputInfo:
    """Detect CSV or Parquet and read the column names, reading only the header or footer.

    Raises:
        ApplicationError: empty, unreadable or neither CSV nor Parquet.
    """
    stream.seek(0)
    head = stream.read(4)
    stream.seek(0)
    try:
        if head == PARQUET_MAGIC:
            try:
                schema = pq.read_schema(stream)
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise ApplicationError(
                    f"The Parquet file cannot be read: {exc}", extra={"field": "input"}
                ) from exc
            return InputInfo(format=FileFormat.PARQUET, columns=list(schema.names))
        if filename.lower().endswith((".parquet", ".pq")):
            raise ApplicationError(
                "The file is named .parquet but is not a Parquet file.", extra={"field": "input"}
            )
        return InputInfo(format=FileFormat.CSV, columns=_csv_header(stream))
    finally:
        stream.seek(0)


def _feature_names(version: ModelVersion) -> tuple[list[str], list[str]]:
    """The version's feature-service features (by name) and their entities' join keys."""
    if version.feature_service_id is None:
        return [], []
    features = Feature.objects.filter(services__id=version.feature_service_id).select_related(
        "group__entity"
    )
    names, keys = [], []
    for feature in features:
        names.append(feature.name)
        for key in feature.group.entity.join_keys or []:
            if key not in keys:
                keys.append(key)
    return names, keys


def columns_check(
    *,
    version: ModelVersion,
    columns: Sequence[str],
    id_columns: Sequence[str],
    as_of: bool = False,
) -> ColumnCheck:
    """Compare an input's columns with what the version takes (order does not matter).

    As of a time, the file carries the entity keys, `event_timestamp` and any model input that is
    not a feature of the version's feature service; the features are joined in later.
    """
    expected = version.signature.column_names
    if as_of:
        features, keys = _feature_names(version)
        expected = [*keys, EVENT_TIMESTAMP, *[name for name in expected if name not in features]]
    found = list(columns)
    return ColumnCheck(
        expected=expected,
        found=found,
        missing=[name for name in expected if name not in found],
        extra=[name for name in found if name not in expected and name not in id_columns],
        unknown_ids=[name for name in id_columns if name not in found],
    )


def outputs_parse(value: Any) -> list[str]:
    """`predict`, `predict_proba`, a comma-separated string or a list → the outputs asked for."""
    if value in (None, "", []):
        return ["predict"]
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(item).strip() for item in items if str(item).strip()]
    unknown = [item for item in items if item not in OUTPUTS]
    if unknown or not items:
        raise ApplicationError(
            f"outputs: unknown output(s) {', '.join(unknown)}; choose from {', '.join(OUTPUTS)}.",
            extra={"field": "outputs"},
        )
    return list(dict.fromkeys(items))


def names_parse(value: Any) -> list[str]:
    if value in (None, "", []):
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return list(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


def format_parse(value: Any) -> str:
    if value in (None, ""):
        return FileFormat.CSV
    if value not in FileFormat.values:
        raise ApplicationError(
            f"format: {value!r} is not one of {', '.join(FileFormat.values)}.",
            extra={"field": "format"},
        )
    return str(value)


def input_name(batch: BatchJob) -> str:
    """The stored file a job's chunks read: the staged file of an as-of job, else the upload."""
    return batch.staged_input or batch.job.input.name


def csv_offsets(stream: IO[bytes], *, chunk_rows: int) -> tuple[list[int], int]:
    """One streaming pass over a CSV: byte offset of every chunk's first row, and the row count.

    A newline ends a row only outside quotes; in RFC 4180 CSV a doubled quote escapes one, so the
    parity of quotes seen so far says whether we are inside a quoted value. Blank lines are not
    rows (pandas skips them too). Memory: one block plus its newline positions.
    """
    starts: list[int] = []
    next_row = -1  # the number the next record gets: the header is row -1
    quotes_seen = 0
    position = 0  # file offset of the current block
    record_start = 0  # file offset where the current (unfinished) record begins
    last_byte = 0  # the byte before the current block
    while block := stream.read(SCAN_BLOCK):
        array = np.frombuffer(block, dtype=np.uint8)
        newlines = np.flatnonzero(array == 10)
        if quotes_seen % 2 or b'"' in block:
            quote_positions = np.flatnonzero(array == 34)
            before = np.searchsorted(quote_positions, newlines) + quotes_seen
            newlines = newlines[before % 2 == 0]
            quotes_seen += len(quote_positions)
        if len(newlines):
            ends = newlines + position
            begins = np.concatenate(([record_start], ends[:-1] + 1))
            lengths = ends - begins
            previous = np.where(newlines > 0, array[np.maximum(newlines - 1, 0)], last_byte)
            blank = (lengths == 0) | ((lengths == 1) & (previous == 13))
            real_begins = begins[~blank]
            numbers = next_row + np.arange(len(real_begins))
            boundary = (numbers >= 0) & (numbers % chunk_rows == 0)
            starts.extend(int(offset) for offset in real_begins[boundary])
            next_row += len(real_begins)
            record_start = int(ends[-1]) + 1
        position += len(block)
        last_byte = block[-1]
    tail = position - record_start
    if tail > 1 or (tail == 1 and last_byte != 13):
        # The last row has no trailing newline.
        if next_row >= 0 and next_row % chunk_rows == 0:
            starts.append(record_start)
        next_row += 1
    return starts, max(next_row, 0)


def parquet_blocks(
    source: Any, *, columns: list[str], start: int, count: int, block_rows: int
) -> Iterator[pd.DataFrame]:
    """Rows [start, start + count) of a Parquet file, reading only the row groups they span."""
    parquet = pq.ParquetFile(source, buffer_size=1024 * 1024, pre_buffer=False)
    metadata = parquet.metadata
    groups, first_row, offset = [], None, 0
    for index in range(metadata.num_row_groups):
        rows = metadata.row_group(index).num_rows
        if offset + rows > start and offset < start + count:
            groups.append(index)
            if first_row is None:
                first_row = offset
        offset += rows
    if not groups:
        return
    position = first_row or 0
    end = start + count
    for batch in parquet.iter_batches(batch_size=block_rows, row_groups=groups, columns=columns):
        batch_end = position + batch.num_rows
        if batch_end > start:
            lo = max(start - position, 0)
            hi = min(end - position, batch.num_rows)
            yield batch.slice(lo, hi - lo).to_pandas()
        position = batch_end
        if position >= end:
            break


def csv_blocks(
    stream: IO[bytes],
    *,
    header: list[str],
    columns: list[str],
    id_columns: Sequence[str],
    byte_start: int,
    count: int,
    block_rows: int,
) -> Iterator[pd.DataFrame]:
    stream.seek(byte_start)
    reader = pd.read_csv(
        stream,
        header=None,
        names=header,
        usecols=columns,
        nrows=count,
        chunksize=block_rows,
        # Ids travel verbatim ("007" stays "007"); plain objects parse faster than `str`.
        dtype=dict.fromkeys(id_columns, object),
        keep_default_na=True,
        skip_blank_lines=True,
        engine="c",
    )
    with reader:
        yield from reader
