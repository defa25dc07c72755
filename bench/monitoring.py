"""The monitoring window computation over a large prediction log.

A classifier on BENCH_MONITORING_COLUMNS input columns (default 30: 28 numbers and 2 texts) is
stored as the registry stores it (`bench/_registry.py ready_version`), and given a reference
profile of 20,000 rows. Then BENCH_MONITORING_ROWS logged predictions (default 1,000,000) are
written in the prediction log's Parquet layout (`prediction-log/model=<id>/date=…/hour=…/`,
in BENCH_MONITORING_FILES files, default 20, as that many serving processes would), with the
model's real predictions and probabilities, a tenth of them with the mean of one column moved.
This is outside the timing.

Timed: `monitoring.windows.windows_compute` for that hour (DuckDB reading the partitions, every
column's bins, nulls, out-of-range and categories, a reservoir sample for KS, drift figures,
the window rows stored), in a child process started for it, whose peak RSS
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`, Django and the libraries included) is reported
with the time, and the peak while computing (the kernel's VmHWM, reset just before). Goals
printed beside them: ≤ 10 s and ≤ 500 MB.
"""

import contextlib
import io
import multiprocessing
import os
import resource
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench._registry import ready_version

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench-monitoring"
GOAL_SECONDS = 10.0
GOAL_MB = 500.0
HOUR = datetime(2026, 3, 2, 9, tzinfo=UTC)
CITIES = ["paris", "lyon", "nice", "lille", "nantes"]


def _django(clean: bool) -> None:
    if clean:
        shutil.rmtree(VAR, ignore_errors=True)
        VAR.mkdir(parents=True)
    os.environ["MLPLATFORM_VAR_DIR"] = str(VAR)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings.local")
    os.environ["DJANGO_DEBUG"] = "0"
    import django

    django.setup()
    if clean:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def _frame(rows: int, columns: int, seed: int) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    numeric = [f"x{i:02d}" for i in range(columns - 2)]
    frame = pd.DataFrame(rng.normal(size=(rows, len(numeric))).round(4), columns=numeric)
    frame["city"] = rng.choice(CITIES, size=rows)
    frame["plan"] = rng.choice(["free", "pro", "team"], size=rows, p=[0.6, 0.3, 0.1])
    return frame


def _log_write(version: Any, model: Any, rows: int, columns: int, files: int) -> float:
    """Write `rows` logged predictions of `version` in hour HOUR; returns the MB written."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from django.core.files.storage import default_storage

    folder = Path(
        default_storage.path(
            f"prediction-log/model={version.model_id}/date={HOUR:%Y-%m-%d}/hour={HOUR:%H}"
        )
    )
    folder.mkdir(parents=True, exist_ok=True)
    per_file = rows // files
    written = 0
    for index in range(files):
        frame = _frame(per_file, columns, seed=100 + index)
        if index < max(1, files // 10):
            frame["x00"] += 1.0  # a tenth of the traffic with one column's mean moved
        predictions = model.predict(frame)
        proba = model.predict_proba(frame)
        start = HOUR + timedelta(minutes=index * 60 / files)
        table = {
            "request_id": pa.array([f"w{index}-{i // 10}" for i in range(per_file)]),
            "ts": pa.array(
                np.full(per_file, int(start.timestamp() * 1e6)), pa.timestamp("us", tz="UTC")
            ),
            "version": pa.array(np.full(per_file, version.version, dtype=np.int32)),
            "role": pa.array(["primary"] * per_file),
            "protocol": pa.array(["native"] * per_file),
            "row": pa.array((np.arange(per_file) % 10).astype(np.int32)),
            "latency_ms": pa.array(np.full(per_file, 2.0)),
        }
        for name in frame.columns:
            values = frame[name]
            table[f"in__{name}"] = (
                pa.array(values.astype(str)) if values.dtype == object else pa.array(values)
            )
        table["out__prediction"] = pa.array([str(p) for p in predictions])
        for k, label in enumerate(model.classes_):
            table[f"out__proba__{label}"] = pa.array(proba[:, k])
        path = folder / f"{version.version}-writer{index:02d}.parquet"
        pq.write_table(pa.table(table), path)
        written += path.stat().st_size
    return written / 1e6


def _status(field: str) -> float:
    """A figure of /proc/self/status in MB (Linux), or NaN elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _peak_reset() -> None:
    """Reset the kernel's peak RSS (VmHWM) of this process, so it measures what follows."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _child(model_id: int, results: Any) -> None:
    """The timed computation, in a process of its own (its peak RSS is the measure)."""
    _django(clean=False)
    from monitoring.windows import windows_compute
    from registry.models import RegisteredModel

    model = RegisteredModel.objects.get(pk=model_id)
    before = _status("VmRSS")
    _peak_reset()
    began = time.perf_counter()
    windows = windows_compute(
        model=model, granularity="hour", start=HOUR, end=HOUR + timedelta(hours=1)
    )
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    during = _status("VmHWM")
    window = windows[0]
    moved = window.columns["x00"].get("psi")
    still = max(v.get("psi") or 0 for k, v in window.columns.items() if k != "x00")
    results.put(
        {
            "seconds": seconds,
            "peak_mb": peak,
            "before_mb": before,
            "during_mb": during,
            "rows": window.rows,
            "requests": window.requests,
            "psi_moved": moved,
            "psi_max_other": still,
            "columns": len(window.columns),
        }
    )


def main() -> None:
    rows = int(os.environ.get("BENCH_MONITORING_ROWS", 1_000_000))
    columns = int(os.environ.get("BENCH_MONITORING_COLUMNS", 30))
    files = int(os.environ.get("BENCH_MONITORING_FILES", 20))
    _django(clean=True)
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from monitoring import reference
    from monitoring.models import ReferenceProfile

    train = _frame(20_000, columns, seed=1)
    numeric = [c for c in train.columns if c.startswith("x")]
    label = np.where(train["x00"] - train["x01"] + (train["city"] == "paris") > 0, "yes", "no")
    model = make_pipeline(
        ColumnTransformer(
            [
                ("num", StandardScaler(), numeric),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
            ]
        ),
        LogisticRegression(max_iter=500),
    ).fit(train, label)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    example = [train.iloc[0].to_dict()]
    version = ready_version("bench-monitoring", buffer.getvalue(), input_example=example)
    print(f"model: {version.signature.estimator}; engine {version.engine}", flush=True)
    reference.reference_build(
        version=version,
        frame=_frame(20_000, columns, seed=2),
        source=ReferenceProfile.Source.UPLOAD,
    )
    began = time.perf_counter()
    size = _log_write(version, model, rows, columns, files)
    print(
        f"log: {rows:,} predictions x {columns} columns in {files} Parquet files, {size:,.0f} MB "
        f"(written in {time.perf_counter() - began:.1f} s, not timed)",
        flush=True,
    )

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_child, args=(version.model_id, results))
    child.start()
    found = results.get(timeout=600)
    child.join()
    seconds, peak = found["seconds"], found["peak_mb"]
    print(
        f"window: {found['rows']:,} rows, {found['requests']:,} requests, "
        f"{found['columns']} columns; PSI of the moved column {found['psi_moved']:.3f}, "
        f"largest PSI of the others {found['psi_max_other']:.4f}"
    )
    print(
        f"windows_compute: {seconds:6.2f} s (goal <= {GOAL_SECONDS:.0f} s: "
        f"{'met' if seconds <= GOAL_SECONDS else 'NOT met'})"
    )
    print(
        f"peak RSS of the computing process: {peak:6.0f} MB (goal <= {GOAL_MB:.0f} MB: "
        f"{'met' if peak <= GOAL_MB else 'NOT met'}); while computing: peak "
        f"{found['during_mb']:.0f} MB, from {found['before_mb']:.0f} MB before it started "
        "(Django and the libraries)"
    )


if __name__ == "__main__":
    main()
