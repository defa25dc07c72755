"""Batch scoring: a real job on one real worker against a bare in-process loop, same file, same run.

For each model (StandardScaler + LogisticRegression, and a 100-tree random forest):
- bare loop: `pandas.read_csv` of the whole file, `predict`, write id + prediction as CSV;
- job: the same file submitted as a batch scoring job (CSV in, CSV out, id column carried),
  scored by one `celery worker` (prefork, concurrency BENCH_BATCH_CONCURRENCY, default 2 like the
  Procfile's worker; 1 measures a single pool process against the single-threaded loop),
  timed from the moment it is queued to the moment its output file is ready.
Then peak worker memory (RSS summed over the worker's process tree, sampled every 50 ms) while
scoring a file of 1M and of 4M rows: bounded by the chunk size, it should not grow with the file.

Sizes (env): BENCH_BATCH_ROWS (default 1,000,000), BENCH_BATCH_COLUMNS (30),
BENCH_BATCH_MEMORY_ROWS (comma-separated, default "1000000,4000000"; empty skips),
BENCH_BATCH_CHUNK_ROWS (100,000), BENCH_BATCH_CONCURRENCY (2), BENCH_BATCH_MODELS
("logreg,forest"), BENCH_BATCH_REPEAT (2: the bare loop and the job alternate, best of each).
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
    return ready_version(name, estimator, buffer.getvalue())


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


def _bare_loop(path: Path, estimator: Any, out: Path) -> float:
    import pandas as pd

    started = time.perf_counter()
    frame = pd.read_csv(path)
    features = frame.drop(columns=["id"])
    predictions = estimator.predict(features)
    pd.DataFrame({"id": frame["id"], "prediction": predictions}).to_csv(out, index=False)
    return time.perf_counter() - started


def _job(path: Path, version: Any, worker: Worker) -> tuple[float, float, int, Any]:
    """Submit, then wait; returns (seconds queued→done, upload seconds, peak RSS, job)."""
    from jobs import batch
    from jobs.models import Job

    upload_started = time.perf_counter()
    with path.open("rb") as stream:
        job = batch.batch_job_submit(
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


def _check_same(bare_out: Path, job: Any) -> None:
    """The job's output must be the bare loop's, row for row."""
    import pandas as pd

    expected = pd.read_csv(bare_out)
    with job.output.open("rb") as handle:
        actual = pd.read_csv(handle)
    assert expected["id"].equals(actual["id"]), "ids differ"
    assert np.array_equal(expected["prediction"].to_numpy(), actual["prediction"].to_numpy())


def main() -> None:
    rows = _env_int("BENCH_BATCH_ROWS", 1_000_000)
    columns = _env_int("BENCH_BATCH_COLUMNS", 30)
    chunk_rows = _env_int("BENCH_BATCH_CHUNK_ROWS", 100_000)
    concurrency = _env_int("BENCH_BATCH_CONCURRENCY", 2)
    repeat = max(1, _env_int("BENCH_BATCH_REPEAT", 2))
    wanted = os.environ.get("BENCH_BATCH_MODELS", "logreg,forest").split(",")
    memory_rows = [
        int(value)
        for value in os.environ.get("BENCH_BATCH_MEMORY_ROWS", "1000000,4000000").split(",")
        if value.strip()
    ]
    os.environ["MLPLATFORM_BATCH_CHUNK_ROWS"] = str(chunk_rows)
    _django()
    from django.conf import settings

    settings.MLPLATFORM_BATCH_CHUNK_ROWS = chunk_rows
    data = VAR / "data"
    data.mkdir()
    path = data / f"rows-{rows}.csv"
    print(f"writing {rows:,} rows x {columns} columns ...", flush=True)
    _write_csv(path, rows, columns)
    size_mb = path.stat().st_size / 1e6
    print(
        f"input: {path.name}, {size_mb:,.0f} MB; chunks of {chunk_rows:,} rows; worker "
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
            f"\n{'model':<8} {'bare loop rows/s':>17} {'job rows/s':>11} {'job/bare':>9} "
            f"{'upload s':>9} {'peak worker MB':>15}"
        )
        for name, estimator in models.items():
            # Interleaved, best of `repeat`: this machine may be shared, and a neighbour's burst
            # should not land on one side of the comparison only.
            bare_seconds = job_seconds = float("inf")
            for _ in range(repeat):
                bare_seconds = min(
                    bare_seconds, _bare_loop(path, estimator, data / f"bare-{name}.csv")
                )
                seconds, upload, peak, job = _job(path, versions[name], worker)
                job_seconds = min(job_seconds, seconds)
                _check_same(data / f"bare-{name}.csv", job)
            print(
                f"{name:<8} {rows / bare_seconds:>17,.0f} {rows / job_seconds:>11,.0f} "
                f"{bare_seconds / job_seconds:>9.2f} {upload:>9.1f} {peak / 1e6:>15,.0f}",
                flush=True,
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
