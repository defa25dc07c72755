"""Evaluation datasets' files: an uploaded CSV or Parquet file read and checked, or a
point-in-time training set built from a feature service and an entity file, always stored as
Parquet."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.files.storage import default_storage

from features import training_sets
from features.models import Feature
from mlplatform import csvfiles
from mlplatform.areas import area_path, team_area
from mlplatform.errors import ApplicationError, NotFoundError

PARQUET_MAGIC = b"PAR1"
# Entity files a JSON request names live in the model team's batch inputs area, as the files
# of scheduled batch scoring do (`batch-inputs/<team>/…`).
ENTITY_FILES_AREA = "batch-inputs/"


@dataclass
class Table:
    path: Path  # a Parquet file
    rows: int
    columns: list[str]


def _spool(stream: IO[bytes], target: Path) -> int:
    """Copy an upload to a local file, refusing it past MLPLATFORM_MAX_UPLOAD_BYTES."""
    limit = int(settings.MLPLATFORM_MAX_UPLOAD_BYTES)
    size = 0
    with target.open("wb") as sink:
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            size += len(chunk)
            if size > limit:
                raise ApplicationError(
                    f"file: more than {limit} bytes (MLPLATFORM_MAX_UPLOAD_BYTES).",
                    extra={"field": "file"},
                    status_code=413,
                )
            sink.write(chunk)
    return size


def is_parquet(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == PARQUET_MAGIC


def read_frame(path: Path, *, field: str = "file") -> pd.DataFrame:
    """A CSV or Parquet file (told apart by its content) as a DataFrame.

    Raises:
        ApplicationError: empty, unreadable, ragged CSV rows, no data rows.
    """
    if path.stat().st_size == 0:
        raise ApplicationError(f"{field}: the file is empty.", extra={"field": field})
    try:
        if is_parquet(path):
            frame = pq.read_table(path).to_pandas()
        else:
            header = csvfiles.header_read(path)
            if not any(name.strip() for name in header):
                raise ApplicationError(f"{field}: the CSV file has no header row.")
            with path.open("rb") as stream:
                csvfiles.records_check(stream, expected=len(header))
            frame = pd.read_csv(path, encoding="utf-8")
    except csvfiles.RaggedRowsError as exc:
        raise ApplicationError(
            f"{field}: {exc.message}", extra={"field": field, **exc.extra}
        ) from exc
    except ApplicationError as exc:
        raise ApplicationError(exc.message, extra={"field": field}) from exc
    except (
        UnicodeDecodeError,
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        pa.ArrowException,
        OSError,
        ValueError,
    ) as exc:
        raise ApplicationError(
            f"{field}: not a readable CSV or Parquet file ({type(exc).__name__}: {exc}).",
            extra={"field": field},
        ) from exc
    duplicates = sorted({str(c) for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicates or any(str(c).startswith("Unnamed: ") for c in frame.columns):
        raise ApplicationError(
            f"{field}: every column needs a distinct name in the header.", extra={"field": field}
        )
    if frame.empty:
        raise ApplicationError(f"{field}: the file has no data rows.", extra={"field": field})
    return frame


def columns_check(
    columns: list[str], *, label_column: str, inputs: list[str], field: str = "file"
) -> None:
    """The label column and the model's input columns must be there.

    Raises:
        ApplicationError: naming what is missing.
    """
    if label_column not in columns:
        raise ApplicationError(
            f"label_column: {label_column!r} is not a column of the file "
            f"(it has {', '.join(columns[:20])}).",
            extra={"field": "label_column"},
        )
    missing = [name for name in inputs if name not in columns]
    if missing:
        raise ApplicationError(
            f"{field}: missing the model's input column(s) {', '.join(missing)}.",
            extra={"field": field, "missing": missing},
        )


@contextmanager
def workspace() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="mlp-evalset-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def upload_read(stream: IO[bytes], folder: Path, *, label_column: str, inputs: list[str]) -> Table:
    """An uploaded labelled file, checked and written as Parquet in `folder`."""
    raw = folder / "upload"
    _spool(stream, raw)
    frame = read_frame(raw)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    columns_check(columns, label_column=label_column, inputs=inputs)
    if frame[label_column].isna().any():
        raise ApplicationError(
            f"label_column: {label_column!r} has empty cells; every row needs its label.",
            extra={"field": "label_column"},
        )
    target = folder / "dataset.parquet"
    try:
        frame.to_parquet(target, index=False)
    except (pa.ArrowException, ValueError) as exc:
        raise ApplicationError(
            f"file: a column mixes types Parquet cannot store ({exc}).", extra={"field": "file"}
        ) from exc
    return Table(path=target, rows=len(frame), columns=columns)


def entity_upload(stream: IO[bytes], folder: Path) -> Path:
    path = folder / "entities"
    _spool(stream, path)
    return path


def entity_stored(reference: str, *, team: Any, folder: Path) -> Path:
    """A file the platform holds, named by its path in the team's batch inputs area.

    Raises:
        ApplicationError: a path outside the area. NotFoundError: no such file.
    """
    area = team_area(ENTITY_FILES_AREA, team)
    name = area_path(reference, area) if team is not None else None
    if name is None:
        raise ApplicationError(
            f"entity_file: name a file in your team's area {area} (e.g. {area}entities.csv).",
            extra={"field": "entity_file"},
        )
    if not default_storage.exists(name):
        raise NotFoundError(
            f"entity_file: there is no file {name}.", extra={"field": "entity_file"}
        )
    path = folder / "entities"
    with default_storage.open(name, "rb") as source, path.open("wb") as sink:
        shutil.copyfileobj(source, sink, 1024 * 1024)
    return path


def entity_rows(path: Path) -> int:
    if is_parquet(path):
        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as stream:
        return max(0, sum(1 for line in stream if line.strip()) - 1)


def entity_check(path: Path, *, label_column: str) -> None:
    """The entity file's header holds the label (the keys and timestamp are checked by the
    training set's build)."""
    try:
        columns = (
            list(pq.read_schema(path).names) if is_parquet(path) else csvfiles.header_read(path)
        )
    except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as exc:
        raise ApplicationError(
            f"entity_file: not a readable CSV or Parquet file ({exc}).",
            extra={"field": "entity_file"},
        ) from exc
    if not columns:
        raise ApplicationError("entity_file: the file is empty.", extra={"field": "entity_file"})
    if label_column not in columns:
        raise ApplicationError(
            f"label_column: {label_column!r} is not a column of the entity file.",
            extra={"field": "label_column"},
        )


def training_set(
    *,
    features: list[Feature],
    entities: Path,
    folder: Path,
    label_column: str,
    inputs: list[str],
    job_id: int | None = None,
) -> Table:
    """The point-in-time training set of `features` for the entity rows, as Parquet: the
    entity file's columns (the label among them), then one column per feature."""
    target = folder / "dataset.parquet"
    rows = training_sets.build(
        features=features, output=target, fmt="parquet", entity_file=entities, job_id=job_id
    )
    columns = list(pq.read_schema(target).names)
    columns_check(columns, label_column=label_column, inputs=inputs, field="feature_service")
    if rows == 0:
        raise ApplicationError("entity_file: the file has no data rows.")
    return Table(path=target, rows=rows, columns=columns)
