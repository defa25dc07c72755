"""Validation of an ingest file against a feature group, and the `available_at` rule.

A file is read and checked whole before anything is written: every problem is collected, and
one bad value rejects the file. The result is an Arrow table in the offline store's layout
(join keys, `event_timestamp`, `available_at`, the features), timestamps as naive UTC.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from features.models import Feature, FeatureGroup
from mlplatform import csvfiles
from mlplatform.errors import ApplicationError

EVENT = "event_timestamp"
AVAILABLE = "available_at"
RESERVED = {EVENT, AVAILABLE}
_TZ_SUFFIX = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)$", re.IGNORECASE)
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}
_DAILY_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

ARROW_TYPES: dict[str, pa.DataType] = {
    Feature.Dtype.INT64: pa.int64(),
    Feature.Dtype.FLOAT64: pa.float64(),
    Feature.Dtype.BOOL: pa.bool_(),
    Feature.Dtype.STRING: pa.string(),
    Feature.Dtype.DATETIME: pa.timestamp("us"),
}


class IngestError(ApplicationError):
    """A rejected file; `errors` lists every reason."""

    def __init__(self, errors: list[str]):
        super().__init__("File rejected: " + "; ".join(errors), extra={"errors": errors})
        self.errors = errors


@dataclass
class Validated:
    table: pa.Table
    key_dtypes: dict[str, str]


def file_format(path: Path) -> str:
    """`parquet` by magic bytes, else `csv`."""
    with path.open("rb") as stream:
        return "parquet" if stream.read(4) == b"PAR1" else "csv"


def read_frame(path: Path) -> pd.DataFrame:
    """Read CSV (every cell as text, so nothing is guessed) or Parquet (typed).

    A CSV row with fewer or more fields than the header refuses the file, naming its line: a
    missing field is never read as a null, an extra one never dropped.
    """
    try:
        if file_format(path) == "parquet":
            return pd.read_parquet(path)
        header = csvfiles.header_read(path)
        if not header:
            raise IngestError(["the file is empty"])
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise IngestError(["the header repeats column(s): " + ", ".join(duplicates)])
        return csvfiles.table_read(path, header=header).to_pandas()
    except csvfiles.RaggedRowsError as exc:
        raise IngestError([exc.message]) from exc
    except (ValueError, UnicodeDecodeError, OSError, pa.ArrowException) as exc:
        raise IngestError([f"the file cannot be read as CSV or Parquet ({exc})"]) from exc


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


def _first_bad(series: pd.Series, bad: np.ndarray) -> str:
    index = int(np.flatnonzero(bad)[0])
    return f"{int(bad.sum())} bad value(s), first at row {index + 1}: {series.iloc[index]!r}"


def parse_timestamps(
    series: pd.Series, *, column: str, naive_utc: bool, errors: list[str], required: bool
) -> np.ndarray | None:
    """Timestamps as naive-UTC datetime64[us]; naive input only when `naive_utc` allows it."""
    missing = series.isna().to_numpy()
    if required and missing.any():
        errors.append(f"column '{column}': {int(missing.sum())} empty value(s)")
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dtype, "tz", None) is None and not naive_utc:
            errors.append(
                f"column '{column}': timestamps have no time zone (set the group's "
                "naive_timestamps_utc to read them as UTC)"
            )
            return None
        values = pd.to_datetime(series, utc=True)
    elif _is_text(series):
        text = series.astype(object).where(~missing, None)
        values = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        bad = values.isna().to_numpy() & ~missing
        if bad.any():
            errors.append(f"column '{column}': unparseable timestamps, {_first_bad(series, bad)}")
            return None
        if not naive_utc:
            naive = np.array(
                [v is not None and not _TZ_SUFFIX.search(str(v).strip()) for v in text],
                dtype=bool,
            )
            if naive.any():
                errors.append(
                    f"column '{column}': timestamps without a time zone, "
                    f"{_first_bad(series, naive)} (add 'Z' or an offset, or set the group's "
                    "naive_timestamps_utc)"
                )
                return None
    else:
        errors.append(f"column '{column}': expected timestamps, got {series.dtype}")
        return None
    return values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")


def coerce(series: pd.Series, *, dtype: str, column: str, errors: list[str]) -> pa.Array | None:
    """One column as an Arrow array of the declared dtype; appends a reason on failure."""
    missing = series.isna().to_numpy()
    text = _is_text(series)
    if dtype == Feature.Dtype.STRING:
        values = series.astype(object).where(~missing, None)
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    if dtype == Feature.Dtype.DATETIME:
        parsed = parse_timestamps(
            series, column=column, naive_utc=False, errors=errors, required=False
        )
        return None if parsed is None else pa.array(parsed, type=pa.timestamp("us"))
    if dtype == Feature.Dtype.BOOL:
        if pd.api.types.is_bool_dtype(series.dtype):
            return pa.array(series.astype(object).where(~missing, None), type=pa.bool_())
        if not text:
            errors.append(f"column '{column}' (bool): got {series.dtype}")
            return None
        lowered = series.astype(object).where(~missing, "").map(lambda v: str(v).strip().lower())
        bad = ~lowered.isin(_TRUE | _FALSE).to_numpy() & ~missing
        if bad.any():
            errors.append(f"column '{column}' (bool): {_first_bad(series, bad)}")
            return None
        return pa.array(
            [None if m else v in _TRUE for v, m in zip(lowered, missing, strict=True)],
            type=pa.bool_(),
        )
    # Numbers.
    if text:
        numbers = pd.to_numeric(series.astype(object).where(~missing, None), errors="coerce")
        bad = numbers.isna().to_numpy() & ~missing
    elif pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype
    ):
        numbers = series.astype("float64") if dtype == Feature.Dtype.FLOAT64 else series
        bad = np.zeros(len(series), dtype=bool)
    else:
        errors.append(f"column '{column}' ({dtype}): got {series.dtype}")
        return None
    as_float = numbers.astype("float64").to_numpy()
    if dtype == Feature.Dtype.INT64:
        with np.errstate(invalid="ignore"):
            bad |= ~missing & ~np.isnan(as_float) & (np.mod(as_float, 1) != 0)
    else:
        bad |= ~missing & np.isinf(as_float)
    if bad.any():
        errors.append(f"column '{column}' ({dtype}): {_first_bad(series, bad)}")
        return None
    null = missing | np.isnan(as_float)
    if dtype == Feature.Dtype.INT64:
        ints = np.where(null, 0, as_float).astype("int64")
        if not text and pd.api.types.is_integer_dtype(series.dtype):
            ints = np.where(null, 0, series.fillna(0).to_numpy(dtype="int64"))
        return pa.array(ints, type=pa.int64(), mask=null)
    return pa.array(np.where(null, 0.0, as_float), type=pa.float64(), mask=null)


def _key_dtype(series: pd.Series) -> str:
    if pd.api.types.is_integer_dtype(series.dtype):
        return Feature.Dtype.INT64
    if _is_text(series):
        numbers = pd.to_numeric(series.astype(object), errors="coerce")
        as_float = numbers.astype("float64").to_numpy()
        if not np.isnan(as_float).any() and (np.mod(as_float, 1) == 0).all():
            return Feature.Dtype.INT64
    return Feature.Dtype.STRING


def next_daily(instants: np.ndarray, daily_at: str) -> np.ndarray:
    """The first HH:MM (UTC) strictly after each instant: when a nightly load picks a row up."""
    match = _DAILY_AT.match(daily_at)
    if not match:
        raise ApplicationError(f"availability.daily_at must be 'HH:MM', got {daily_at!r}.")
    offset = np.timedelta64(int(match[1]) * 60 + int(match[2]), "m")
    days = (instants - offset).astype("datetime64[D]")
    return (days + np.timedelta64(1, "D")).astype("datetime64[us]") + offset


def availability_validate(availability: Any) -> dict[str, Any]:
    """Normalise a group's availability rule; raises ApplicationError naming what is wrong."""
    if availability in (None, {}):
        return {}
    if not isinstance(availability, dict) or len(availability) != 1:
        raise ApplicationError(
            "availability must be null or one of {'column': name}, {'daily_at': 'HH:MM'}, "
            "{'lag_seconds': n}."
        )
    ((kind, value),) = availability.items()
    if kind == "column":
        if value != AVAILABLE:
            raise ApplicationError(f"availability.column must be '{AVAILABLE}'.")
    elif kind == "daily_at":
        if not isinstance(value, str) or not _DAILY_AT.match(value):
            raise ApplicationError("availability.daily_at must be 'HH:MM' (UTC).")
    elif kind == "lag_seconds":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ApplicationError("availability.lag_seconds must be a non-negative integer.")
    else:
        raise ApplicationError(f"availability: unknown rule {kind!r}.")
    return {kind: value}


def available_at(
    *, group: FeatureGroup, events: np.ndarray, explicit: np.ndarray | None, now: datetime
) -> np.ndarray:
    """`available_at` per DESIGN §6: explicit column, else the group's rule, else `now`."""
    rule = group.availability or {}
    if "column" in rule and explicit is not None:
        return explicit
    if "daily_at" in rule:
        return next_daily(events, rule["daily_at"])
    if "lag_seconds" in rule:
        return events + np.timedelta64(int(rule["lag_seconds"]), "s")
    return np.full(len(events), naive_utc(now), dtype="datetime64[us]")


def naive_utc(moment: datetime) -> np.datetime64:
    """An aware datetime as a naive-UTC numpy instant (the offline store's convention)."""
    return np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "us")


def frame_validate(
    *, group: FeatureGroup, frame: pd.DataFrame, now: datetime, with_available: bool = True
) -> Validated:
    """Check a whole frame against the group and convert it. Raises IngestError with reasons."""
    features = list(group.features.all())
    keys: list[str] = list(group.entity.join_keys)
    errors: list[str] = []
    if frame.empty:
        raise IngestError(["the file has no rows"])
    explicit_column = "column" in (group.availability or {})
    expected = [*keys, EVENT, *(f.name for f in features)]
    if explicit_column and with_available:
        expected.append(AVAILABLE)
    columns = [str(c) for c in frame.columns]
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    if missing:
        errors.append("missing column(s): " + ", ".join(missing))
    if extra:
        errors.append("unexpected column(s): " + ", ".join(extra))
    if errors:
        raise IngestError(errors)

    arrays: dict[str, pa.Array] = {}
    key_dtypes = dict(group.key_dtypes or {})
    for key in keys:
        series = frame[key]
        empty = series.isna().to_numpy()
        if empty.any():
            errors.append(f"join key '{key}': {int(empty.sum())} empty value(s)")
            continue
        dtype = key_dtypes.get(key) or _key_dtype(series)
        key_dtypes[key] = dtype
        array = coerce(series, dtype=dtype, column=key, errors=errors)
        if array is not None:
            arrays[key] = array
    events = parse_timestamps(
        frame[EVENT],
        column=EVENT,
        naive_utc=group.naive_timestamps_utc,
        errors=errors,
        required=True,
    )
    explicit = None
    if explicit_column and with_available:
        explicit = parse_timestamps(
            frame[AVAILABLE],
            column=AVAILABLE,
            naive_utc=group.naive_timestamps_utc,
            errors=errors,
            required=True,
        )
        if explicit is not None and events is not None and (explicit < events).any():
            bad = explicit < events
            errors.append(
                f"column '{AVAILABLE}': earlier than event_timestamp, "
                f"{_first_bad(frame[AVAILABLE], bad)}"
            )
    for feature in features:
        array = coerce(frame[feature.name], dtype=feature.dtype, column=feature.name, errors=errors)
        if array is not None:
            arrays[feature.name] = array
    if errors or events is None:
        raise IngestError(errors or ["event_timestamp could not be read"])
    availability = available_at(group=group, events=events, explicit=explicit, now=now)
    table = pa.table(
        {
            **{key: arrays[key] for key in keys},
            EVENT: pa.array(events, type=pa.timestamp("us")),
            AVAILABLE: pa.array(availability, type=pa.timestamp("us")),
            **{f.name: arrays[f.name] for f in features},
        }
    )
    return Validated(table=table, key_dtypes=key_dtypes)
