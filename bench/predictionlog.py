"""The prediction log's cost to the caller: native predict throughput and p50/p99 over HTTP with
the model's log sample rate at 0 (logging off) vs 0.1, in interleaved rounds of one run.

The model is the realistic pipeline of bench/rollout.py (breast-cancer data, 30 named float
columns; StandardScaler + LogisticRegression, compiled to ONNX by the registry), with
`production` on it. The server is gunicorn with the project's config and defaults, as users run
it; load comes from `wrk` (Debian package) or a Python keep-alive client, 8 connections, one row
per request on `/api/v1/models/<name>/predict`.

Each round measures the model at rate 0 and at 0.1 (alternating which goes first): the rate is
changed through `registry.services.model_update` between the two (as `PATCH
/api/v1/models/<name>/` does), and the load starts once the server's routes have expired
(MLPLATFORM_ALIAS_TTL_SECONDS). Goal, printed beside the figures: throughput at 10 % within 5 %
of logging off (the median of the rounds' ratios, each of two measures taken back to back). The
rows the log received (Parquet partitions, and the pages' database rows within their cap) are
counted after the server has written its last entries at exit.

On a shared machine the HTTP figures move with other processes' load, so the same requests are
also timed in this process through the project's WSGI stack, as CPU seconds per request (every
thread's, the log's writer included); the CPU logging adds per request is set against the
server's CPU per request over HTTP (cores / requests a second), the share of throughput it can
cost a CPU-bound server.

Sizes: BENCH_LOG_SECONDS (per target and round, default 3), BENCH_LOG_ROUNDS (default 5).
"""

import json
import os
import shutil
import time
from datetime import timedelta

import numpy as np

from bench._harness import ROOT, django_setup, gunicorn, stop
from bench.rollout import NAME as ROLLOUT_NAME
from bench.rollout import _models
from bench.serving import _load, _server_config, _stacks, _token, _warm, _wsgi_post

VAR = ROOT / "var" / "bench-predictionlog"
GOAL_RPS_RATIO = 0.95
TTL_SECONDS = 1.0
TARGETS = (("logging off", 0.0), ("logging 10 %", 0.1))


def _rate(rate: float) -> None:
    from registry import services
    from registry.models import RegisteredModel

    services.model_update(
        model=RegisteredModel.objects.get(name=ROLLOUT_NAME), log_sample_rate=rate
    )


def _logged() -> tuple[int, int, int, int]:
    """(Parquet files, Parquet rows, distinct requests in them, database rows) of the model."""
    import duckdb
    from django.core.files.storage import default_storage
    from django.utils import timezone

    from registry.models import RegisteredModel
    from serving import predictionlog
    from serving.models import PredictionLog

    model = RegisteredModel.objects.get(name=ROLLOUT_NAME)
    now = timezone.now()
    names = predictionlog.partition_names(
        model.pk, now - timedelta(days=1), now + timedelta(hours=1)
    )
    rows = requests = 0
    if names:
        paths = ", ".join(f"'{default_storage.path(name)}'" for name in names)
        relation = duckdb.sql(
            f"SELECT count(*), count(DISTINCT request_id) "
            f"FROM read_parquet([{paths}], union_by_name=true)"
        )
        assert relation is not None
        ((rows, requests),) = relation.fetchall()
    return len(names), rows, requests, PredictionLog.objects.filter(model=model).count()


def _cpu_per_request(token: str, body: bytes, rounds: int, calls: int) -> dict[str, list[float]]:
    """CPU seconds per request of the project's WSGI stack in this process (every thread's, the
    log's writer included, with its last write flushed), per target and round: unlike the HTTP
    figures, not moved by other processes' load on a shared machine."""
    from serving import predictionlog, traffic

    app, _ = _stacks()
    path = f"/api/v1/models/{ROLLOUT_NAME}/predict"
    found: dict[str, list[float]] = {target: [] for target, _ in TARGETS}
    for number in range(rounds):
        for target, rate in TARGETS if number % 2 == 0 else TARGETS[::-1]:
            _rate(rate)
            traffic.cache_clear()
            for _ in range(50):
                _wsgi_post(app, path, body, token)
            predictionlog.flush()
            started = time.process_time()
            for _ in range(calls):
                _wsgi_post(app, path, body, token)
            predictionlog.flush()
            found[target].append((time.process_time() - started) / calls)
    return found


def main() -> None:
    seconds = int(os.environ.get("BENCH_LOG_SECONDS", "3"))
    rounds = int(os.environ.get("BENCH_LOG_ROUNDS", "5"))
    django_setup(VAR)
    token = _token()
    row = _models()
    tool = "wrk" if shutil.which("wrk") else "a Python client (install Debian's wrk for precision)"
    print(
        f"load: {tool}, 8 connections, {rounds} interleaved rounds of {seconds} s per target "
        f"(medians); gunicorn {_server_config()}; one row per request, 30 columns"
    )
    env = {
        "MLPLATFORM_VAR_DIR": str(VAR),
        "DJANGO_SETTINGS_MODULE": "mlplatform.settings.local",
        "DJANGO_DEBUG": "0",
        "MLPLATFORM_PRELOAD": "production",
        "MLPLATFORM_ALIAS_TTL_SECONDS": str(TTL_SECONDS),
    }
    body = json.dumps({"instances": [row]})
    auth = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    process, port = gunicorn("mlplatform.wsgi", env, var=VAR)
    url = f"http://127.0.0.1:{port}/api/v1/models/{ROLLOUT_NAME}/predict"
    results: dict[str, list[dict[str, float]]] = {target: [] for target, _ in TARGETS}
    try:
        for number in range(rounds):
            # Alternate which goes first, so a trend in the machine's load favours neither.
            for target, rate in TARGETS if number % 2 == 0 else TARGETS[::-1]:
                _rate(rate)
                time.sleep(TTL_SECONDS + 0.5)  # every worker's routes have expired
                error = _warm(url, body, auth)
                if error:
                    raise RuntimeError(f"{target}: {error}")
                results[target].append(_load(url, body, auth, seconds))
    finally:
        stop(process)  # the workers write their last entries at exit
    medians = {
        target: {key: float(np.median([run[key] for run in runs])) for key in ("rps", "p50", "p99")}
        for target, runs in results.items()
    }
    for target, figures in medians.items():
        errors = sum(run["errors"] for run in results[target])
        print(
            f"  {target:>13}: {figures['rps']:7.0f} req/s  p50 {figures['p50']:6.2f} ms  "
            f"p99 {figures['p99']:6.2f} ms" + (f"  ({errors:.0f} errors!)" if errors else "")
        )
    files, rows, requests, database = _logged()
    print(
        f"  logged: {requests} requests in {files} Parquet files ({rows} rows); {database} "
        "database rows for the pages (capped by MLPLATFORM_LOG_DB_ROWS_PER_SECOND per process)"
    )
    cpu = _cpu_per_request(token, body.encode(), rounds, 10_000)
    for target, runs in cpu.items():
        print(f"  {target:>13}: {np.median(runs) * 1e6:7.1f} µs of CPU per request (in process)")
    added = float(
        np.median(
            [on - off for on, off in zip(cpu["logging 10 %"], cpu["logging off"], strict=True)]
        )
    )
    # The server's CPU per request over HTTP, at most: every core busy at the measured rate.
    server = (os.cpu_count() or 1) / medians["logging off"]["rps"]
    print(
        f"  logging at 10 % adds {added * 1e6:.1f} µs of CPU per request in process: "
        f"{added / server:.1%} of the server's CPU per request over HTTP (at most "
        f"{server * 1e6:.0f} µs: {os.cpu_count()} cores at {medians['logging off']['rps']:.0f} "
        "req/s), the throughput it can cost a CPU-bound server"
    )
    paired = [
        on["rps"] / off["rps"]
        for on, off in zip(results["logging 10 %"], results["logging off"], strict=True)
    ]
    ratio = float(np.median(paired))
    print(f"  per round, 10 % over off: {', '.join(f'{r:.3f}' for r in paired)}")
    print(
        f"\ngoal: throughput at a 10 % sample rate within 5 % of logging off (median of the "
        f"rounds' ratios): {ratio:.3f} of it ({'met' if ratio >= GOAL_RPS_RATIO else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
