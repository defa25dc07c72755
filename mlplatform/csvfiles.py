"""Strict CSV: a record with fewer or more fields than the header refuses the file, naming its line.

Readers that fill a short row with nulls, or read a long row from its first fields, change data
silently. pyarrow's CSV reader reports such records through its `invalid_row_handler`; it counts
records, not lines, so when a file is refused its lines are counted again with Python's csv module:
a line number here is what an editor shows (the header is line 1, a quoted value may span lines,
blank lines are counted as lines but are not records).
"""

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv

from mlplatform.errors import ApplicationError

MAX_REPORTED = 5
_BLOCK = 4 * 1024 * 1024


class RaggedRowsError(ApplicationError):
    """Records whose field count differs from the header's; `lines` are 1-based file lines."""

    def __init__(self, message: str, *, lines: list[int]):
        super().__init__(message, extra={"lines": lines})
        self.lines = lines


def header_read(path: Path) -> list[str]:
    """The first record of a UTF-8 CSV file (empty list for an empty file)."""
    with path.open(encoding="utf-8-sig", newline="") as text:
        return next(csv.reader(text), [])


def table_read(path: Path, *, header: Sequence[str]) -> pa.Table:
    """Every field as text (empty → null), columns named `header`, in one pass.

    Raises:
        RaggedRowsError: a record with fewer or more fields than the header.
        pa.ArrowInvalid: text that is not UTF-8 or not CSV.
    """
    names = [f"c{index}" for index in range(len(header))]
    bad: list[int] = []
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=False),
        parse_options=pacsv.ParseOptions(
            newlines_in_values=True, invalid_row_handler=_collector(bad)
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    if bad:
        with path.open("rb") as stream:
            raise _refusal(stream, expected=len(header), records=bad)
    return table.rename_columns(list(header))


def records_check(stream: IO[bytes], *, expected: int) -> None:
    """Check that every record of a CSV stream (header first) has `expected` fields.

    Only one column is converted, so this costs little more than splitting the records.

    Raises:
        RaggedRowsError: naming the first lines that do not, and how many there are.
    """
    start = stream.tell()
    bad: list[int] = []
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(
            column_names=[f"c{index}" for index in range(expected)],
            skip_rows=1,
            use_threads=False,
            block_size=_BLOCK,
        ),
        parse_options=pacsv.ParseOptions(
            newlines_in_values=True, invalid_row_handler=_collector(bad)
        ),
        convert_options=pacsv.ConvertOptions(
            include_columns=["c0"], column_types={"c0": pa.string()}
        ),
    )
    for _batch in reader:
        pass
    if bad:
        stream.seek(start)
        raise _refusal(stream, expected=expected, records=bad)


def _collector(bad: list[int]) -> Any:
    def handle(row: Any) -> str:
        bad.append(row.number or 0)
        return "skip"  # keep reading: the refusal counts them all

    return handle


def _refusal(stream: IO[bytes], *, expected: int, records: list[int]) -> RaggedRowsError:
    found = _lines_with_wrong_width(stream, expected=expected)
    total = len(records)
    if found:
        what = "; ".join(
            f"line {line} has {width} field{'s' if width != 1 else ''}" for line, width in found
        )
        lines = [line for line, _ in found]
    else:  # the two parsers disagree about quoting: fall back on pyarrow's record numbers
        what = "; ".join(f"record {number} (the header is record 1)" for number in records[:5])
        lines = []
    more = f" and {total - len(found)} more" if found and total > len(found) else ""
    return RaggedRowsError(
        f"{total} row(s) do not have the header's {expected} fields: {what}{more}. "
        "Every row needs exactly one value per column (an empty value is written as nothing "
        "between two commas).",
        lines=lines,
    )


def _lines_with_wrong_width(stream: IO[bytes], *, expected: int) -> list[tuple[int, int]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.reader(text)
    found: list[tuple[int, int]] = []
    previous_line = 0
    try:
        for index, row in enumerate(reader):
            first_line = previous_line + 1
            previous_line = reader.line_num
            if index == 0 or not row:
                continue  # the header, or a blank line
            if len(row) != expected:
                found.append((first_line, len(row)))
                if len(found) >= MAX_REPORTED:
                    break
    except csv.Error:
        pass  # a field beyond csv's size limit: report what was found before it
    finally:
        text.detach()
    return found
