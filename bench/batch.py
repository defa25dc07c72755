"""Batch scoring: a real job on one real worker against bare in-process loops, same file, same run.

For each model (StandardScaler + LogisticRegression, and a 100-tree random forest), fitted as
users fit them, on a pandas DataFrame with named columns, and stored as the registry stores it
(compiled to ONNX, so the job scores with onnxruntime; the engine is printed):
- bare scikit-learn loop: `pandas.read_csv` in blocks of BENCH_BATCH_BLOCK_ROWS, `predict` on
  each block's DataFrame, write id + prediction as CSV: what a user's own script does;
- bare onnxruntime loop: the same blocks through the version's stored graph (one thread), for
  what the engine alone does, without the job's validation, chunking and bookkeeping;
- job: the same file submitted as a batch scoring job (CSV in, CSV out, id column carried),
  scored by one `celery worker` (prefork, concurrency BENCH_BATCH_CONCURRENCY, default 2 like the
  Procfile's worker; 1 measures a single pool process against the single-threaded loops),
  timed from the moment it is queued to the moment its output file is ready; its output must
  match the scikit-learn loop's row for row (differences are counted and printed).
Goal, printed beside the figures: the job's rows/s ≥ the bare scikit-learn loop's.
Then peak worker memory (RSS summed over the worker's process tree, sampled every 50 ms) while
scoring a file of 1M and of 4M rows: bounded by the chunk size, it should not grow with the file.

Sizes (env): BENCH_BATCH_ROWS (default 1,000,000), BENCH_BATCH_COLUMNS (30),
BENCH_BATCH_MEMORY_ROWS (comma-separated, default "1000000,4000000"; empty skips),
BENCH_BATCH_CHUNK_ROWS (100,000), BENCH_BATCH_BLOCK_ROWS (50,000: the job's read block and the
loops'), BENCH_BATCH_CONCURRENCY (2), BENCH_BATCH_MODELS ("logreg,forest"), BENCH_BATCH_REPEAT
(2: the loops and the job alternate, best of each).
"""

import contextlib
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._registry import ready_version

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench-batch"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _django() -> None:
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    os.environ["MLPLATFORM_VAR_DIR"] = str(VAR)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings.local")
    os.environ["DJANGO_DEBUG"] = "0"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    for folder in getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).values():
        if isinstance(folder, str) and folder.startswith("/"):
            Path(folder).mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)


def _write_csv(path: Path, rows: int, columns: int) -> None:
    """Random features (4 decimals, as real exports usually are) plus a text id, in 100k blocks."""
    import pandas as pd

    rng = np.random.default_rng(0)
    names = [f"x{i:02d}" for i in range(columns)]
    with path.open("w") as handle:
        for start in range(0, rows, 100_000):
            count = min(100_000, rows - start)
            frame = pd.DataFrame(rng.normal(size=(count, columns)).round(4), columns=names)
            frame.insert(0, "id", [f"r{i:08d}" for i in range(start, start + count)])
            frame.to_csv(handle, index=False, header=start == 0, lineterminator="\n")


def _repeat_csv(source: Path, target: Path, times: int) -> None:
    """A bigger file from a smaller one: its rows `times` over (ids repeat; fine for memory)."""
    with source.open("rb") as handle:
        header = handle.readline()
        body_start = handle.tell()
    with target.open("wb") as out:
        out.write(header)
        for _ in range(times):
            with source.open("rb") as handle:
                handle.seek(body_start)
                shutil.copyfileobj(handle, out, 16 * 1024 * 1024)


def _models(columns: int, wanted: list[str]) -> dict[str, Any]:
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    names = [f"x{i:02d}" for i in range(columns)]
    train = pd.DataFrame(rng.normal(size=(20_000, columns)), columns=names)
    labels = (train.iloc[:, 0] + train.iloc[:, 1] * train.iloc[:, 2] > 0).astype(int)
    models: dict[str, Any] = {}
    if "logreg" in wanted:
        models["logreg"] = make_pipeline(StandardScaler(), LogisticRegression()).fit(train, labels)
    if "forest" in wanted:
        models["forest"] = RandomForestClassifier(
            n_estimators=100, max_depth=12, random_state=0, n_jobs=1
        ).fit(train, labels)
    return models


def _register(name: str, estimator: Any) -> Any:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return ready_version(name, buffer.getvalue())


class Worker:
    """One `celery worker` process on the bench's own broker folder and database."""

    def __init__(self, concurrency: int) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLPLATFORM_BROKER_POLL_SECONDS": "0.05"}
        self.log = (VAR / "worker.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mlplatform",
                "worker",
                "--loglevel=WARNING",
                f"--concurrency={concurrency}",
                "--pool=prefork",
                "-n",
                "bench@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        time.sleep(1.0)
        self._peak = 0
        self._sampling = False

    def rss(self) -> int:
        import psutil

        try:
            root = psutil.Process(self.process.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        return total

    def sample_peak(self) -> "Worker":
        self._peak = self.rss()
        self._sampling = True

        def loop() -> None:
            while self._sampling:
                self._peak = max(self._peak, self.rss())
                time.sleep(0.05)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def stop_sampling(self) -> int:
        self._sampling = False
        self._thread.join()
        return self._peak

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _bare_loop(path: Path, estimator: Any, out: Path, block_rows: int) -> float:
    """A user's own script: read the CSV in blocks, predict on each block's DataFrame."""
    import pandas as pd

    started = time.perf_counter()
    with out.open("w") as handle, pd.read_csv(path, chunksize=block_rows) as reader:
        for number, frame in enumerate(reader):
            predictions = estimator.predict(frame.drop(columns=["id"]))
            pd.DataFrame({"id": frame["id"], "prediction": predictions}).to_csv(
                handle, index=False, header=number == 0, lineterminator="\n"
            )
    return time.perf_counter() - started


def _onnx_loop(path: Path, version: Any, out: Path, block_rows: int) -> float:
    """The same blocks through the version's stored graph in onnxruntime (one thread, as the
    serving processes run it): JSON-free, check-free, the engine's own speed."""
    import onnxruntime as ort
    import pandas as pd

    with version.graph.open("rb") as stream:
        graph = stream.read()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    columns = version.signature.column_names
    compilation = version.compilation or {}
    dtype = np.float64 if compilation.get("precision") == "float64" else np.float32
    matrix_input = session.get_inputs()[0].name
    label = [session.get_outputs()[0].name]
    started = time.perf_counter()
    with out.open("w") as handle, pd.read_csv(path, chunksize=block_rows) as reader:
        for number, frame in enumerate(reader):
            if compilation.get("inputs", "matrix") == "matrix":
                feed = {matrix_input: np.ascontiguousarray(frame[columns].to_numpy(dtype))}
            else:
                feed = {c: frame[c].to_numpy(dtype).reshape(-1, 1) for c in columns}
            predictions = session.run(label, feed)[0].ravel()
            pd.DataFrame({"id": frame["id"], "prediction": predictions}).to_csv(
                handle, index=False, header=number == 0, lineterminator="\n"
            )
    return time.perf_counter() - started


def _job(path: Path, version: Any, worker: Worker) -> tuple[float, float, int, Any]:
    """Submit, then wait; returns (seconds queued→done, upload seconds, peak RSS, job)."""
    from batch import submit
    from jobs.models import Job

    upload_started = time.perf_counter()
    with path.open("rb") as stream:
        job = submit.batch_job_submit(
            version=version, stream=stream, filename=path.name, id_columns=["id"]
        )
    upload = time.perf_counter() - upload_started
    worker.sample_peak()
    started = time.perf_counter()
    while True:
        job.refresh_from_db()
        if job.status in Job.FINISHED:
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    peak = worker.stop_sampling()
    if job.status != Job.Status.SUCCEEDED:
        raise SystemExit(
            f"job {job.pk} {job.status}: {job.error}\n{(VAR / 'worker.log').read_text()}"
        )
    return seconds, upload, peak, job


def _differences(bare_out: Path, job: Any) -> int:
    """How many of the job's predictions differ from the bare loop's (ids must be the same)."""
    import pandas as pd

    expected = pd.read_csv(bare_out)
    with job.output.open("rb") as handle:
        actual = pd.read_csv(handle)
    assert expected["id"].equals(actual["id"]), "ids differ"
    return int((expected["prediction"].to_numpy() != actual["prediction"].to_numpy()).sum())


def main() -> None:
    rows = _env_int("BENCH_BATCH_ROWS", 1_000_000)
    columns = _env_int("BENCH_BATCH_COLUMNS", 30)
    chunk_rows = _env_int("BENCH_BATCH_CHUNK_ROWS", 100_000)
    block_rows = _env_int("BENCH_BATCH_BLOCK_ROWS", 50_000)
    concurrency = _env_int("BENCH_BATCH_CONCURRENCY", 2)
    repeat = max(1, _env_int("BENCH_BATCH_REPEAT", 2))
    wanted = os.environ.get("BENCH_BATCH_MODELS", "logreg,forest").split(",")
    memory_rows = [
        int(value)
        for value in os.environ.get("BENCH_BATCH_MEMORY_ROWS", "1000000,4000000").split(",")
        if value.strip()
    ]
    os.environ["MLPLATFORM_BATCH_CHUNK_ROWS"] = str(chunk_rows)
    os.environ["MLPLATFORM_BATCH_BLOCK_ROWS"] = str(block_rows)
    _django()
    from django.conf import settings

    settings.MLPLATFORM_BATCH_CHUNK_ROWS = chunk_rows
    settings.MLPLATFORM_BATCH_BLOCK_ROWS = block_rows
    data = VAR / "data"
    data.mkdir()
    path = data / f"rows-{rows}.csv"
    print(f"writing {rows:,} rows x {columns} columns ...", flush=True)
    _write_csv(path, rows, columns)
    size_mb = path.stat().st_size / 1e6
    print(
        f"input: {path.name}, {size_mb:,.0f} MB; chunks of {chunk_rows:,} rows, read in blocks "
        f"of {block_rows:,}; worker "
        f"concurrency {concurrency}; best of {repeat}",
        flush=True,
    )
    models = _models(columns, wanted)
    versions = {name: _register(name, estimator) for name, estimator in models.items()}
    worker = Worker(concurrency)
    try:
        # Warm-up (not measured): the worker imports its libraries and loads each model once,
        # as the bare loop has its model in memory already.
        warm = data / "warm.csv"
        _write_csv(warm, 1_000, columns)
        for version in versions.values():
            _job(warm, version, worker)
        print(
            f"\n{'model':<8} {'engine':>6} {'sklearn loop rows/s':>20} {'onnx loop rows/s':>17} "
            f"{'job rows/s':>11} {'job/sklearn':>12} {'upload s':>9} {'peak worker MB':>15} "
            f"{'differ':>7}"
        )
        ratios = {}
        for name, estimator in models.items():
            version = versions[name]
            compiled = bool(version.graph)
            # Interleaved, best of `repeat`: this machine may be shared, and a neighbour's burst
            # should not land on one side of the comparison only.
            bare_seconds = onnx_seconds = job_seconds = float("inf")
            differ = 0
            for _ in range(repeat):
                bare_out = data / f"bare-{name}.csv"
                bare_seconds = min(bare_seconds, _bare_loop(path, estimator, bare_out, block_rows))
                if compiled:
                    onnx_seconds = min(
                        onnx_seconds,
                        _onnx_loop(path, version, data / f"onnx-{name}.csv", block_rows),
                    )
                seconds, upload, peak, job = _job(path, version, worker)
                job_seconds = min(job_seconds, seconds)
                differ = max(differ, _differences(bare_out, job))
            ratios[name] = bare_seconds / job_seconds
            onnx_rate = f"{rows / onnx_seconds:,.0f}" if compiled else "-"
            print(
                f"{name:<8} {version.engine:>6} {rows / bare_seconds:>20,.0f} {onnx_rate:>17} "
                f"{rows / job_seconds:>11,.0f} {ratios[name]:>12.2f} {upload:>9.1f} "
                f"{peak / 1e6:>15,.0f} {differ:>7,}",
                flush=True,
            )
        for name, ratio in ratios.items():
            print(
                f"goal, {name}: job rows/s ≥ the bare pandas+scikit-learn loop's: {ratio:.2f}x "
                f"({'met' if ratio >= 1.0 else 'MISSED'})"
            )
        if memory_rows and "logreg" in versions:
            print(f"\npeak worker memory (logreg, worker concurrency {concurrency}):")
            baseline = worker.rss()
            print(f"  idle worker (model loaded): {baseline / 1e6:,.0f} MB")
            peaks = []
            for size in memory_rows:
                sized = data / f"memory-{size}.csv"
                if size % rows == 0:
                    _repeat_csv(path, sized, size // rows)
                else:
                    _write_csv(sized, size, columns)
                seconds, _, peak, _ = _job(sized, versions["logreg"], worker)
                peaks.append(peak)
                print(
                    f"  {size:>10,} rows ({sized.stat().st_size / 1e6:,.0f} MB): peak "
                    f"{peak / 1e6:,.0f} MB, {size / seconds:,.0f} rows/s",
                    flush=True,
                )
                sized.unlink()
            if len(peaks) > 1:
                print(f"  peak ratio largest/smallest file: {peaks[-1] / peaks[0]:.2f}")
    finally:
        worker.stop()


if __name__ == "__main__":
    main()
