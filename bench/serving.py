"""Real-time serving: how close the platform's predict routes come to a bare model.

Three comparisons, each measured in this run:
1. in process: `model.predict` on one row in a loop vs. the native route through Django's test
   client (same row, token auth, validation, JSON);
2. over HTTP, the production server config (gunicorn, 2 workers), 8 concurrent connections,
   load from `wrk` (Debian package) or, if it is missing, a Python keep-alive client: the native,
   MLflow and v2 routes vs. a bare WSGI app (no Django) doing the same JSON decode + predict;
3. the same for a 100-tree random forest, where predict dominates.

Sizes: BENCH_SERVING_SECONDS (per HTTP route and round, default 3), BENCH_SERVING_ROUNDS
(interleaved rounds, medians reported, default 5), BENCH_SERVING_CALLS (in-process calls,
default 2000).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import numpy as np

from bench._registry import ready_version

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench-serving"


# --- the bare WSGI baseline (run by gunicorn as `bench.serving:bare_app`) ---------------------

_bare_model: Any = None
_bare_columns: list[str] = []


def bare_app(environ: dict, start_response: Any) -> list[bytes]:
    """What a hand-written Flask-less endpoint would do: JSON → array → predict → JSON."""
    global _bare_model, _bare_columns
    if _bare_model is None:
        from registry.artifacts import load_bytes

        path = Path(os.environ["BENCH_SERVING_ARTIFACT"])
        _bare_model = load_bytes(path.read_bytes(), fmt="joblib")
        _bare_columns = [f"f{i}" for i in range(_bare_model.n_features_in_)]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = json.loads(environ["wsgi.input"].read(length))
    rows = data["instances"]
    matrix = np.array([[row[c] for c in _bare_columns] for row in rows], dtype=np.float64)
    body = json.dumps({"predictions": _bare_model.predict(matrix).tolist()}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


# --- set-up -------------------------------------------------------------------------------


def _django() -> None:
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    os.environ["MLPLATFORM_VAR_DIR"] = str(VAR)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings.local")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _models() -> dict[str, tuple[Any, bytes]]:
    import io

    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    fitted = {
        "bc-logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y),
        "bc-forest": RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(x, y),
    }
    out = {}
    for name, model in fitted.items():
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        out[name] = (model, buffer.getvalue())
    return out


def _token() -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user("bench", password="bench-pw-123")
    return Token.objects.create(user=user).key


# --- in-process -----------------------------------------------------------------------------


def _in_process(model: Any, name: str, row: dict[str, float], token: str, calls: int) -> None:
    from rest_framework.test import APIClient

    matrix = np.array([list(row.values())])
    model.predict(matrix)
    started = time.perf_counter()
    for _ in range(calls):
        model.predict(matrix)
    bare = (time.perf_counter() - started) / calls

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    body = json.dumps({"instances": [row]})
    path = f"/api/v1/models/{name}/predict"
    assert client.post(path, body, content_type="application/json").status_code == 200
    started = time.perf_counter()
    for _ in range(calls):
        client.post(path, body, content_type="application/json")
    native = (time.perf_counter() - started) / calls
    print(
        f"  in process, {calls} calls: bare predict {bare * 1e6:8.0f} µs/call | native route via "
        f"test client {native * 1e6:8.0f} µs/call | ratio {native / bare:5.1f}x the bare call"
    )


# --- over HTTP ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gunicorn(app: str, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    full = {**os.environ, **env, "PORT": str(port), "WEB_CONCURRENCY": "2", "WEB_THREADS": "1"}
    log = (VAR / f"gunicorn-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--config", "python:mlplatform.gunicorn"],
        cwd=ROOT,
        env=full,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"gunicorn {app} did not start; see {log.name}")


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk(url: str, body: str, headers: dict[str, str], seconds: int) -> dict[str, float]:
    script = (
        "wrk.method = 'POST'\n"
        + f"wrk.body = {json.dumps(body)}\n"
        + "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items())
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        output = subprocess.run(
            ["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-s", handle.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(handle.name)

    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        return float(match.group(1)) * _WRK_UNITS[match.group(2)] if match else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def _python_load(url: str, body: str, headers: dict[str, str], seconds: int) -> dict[str, float]:
    """Fallback load generator: 8 keep-alive connections in threads (GIL-bound; less precise)."""
    host, port_path = url.removeprefix("http://").split(":", 1)
    port, path = port_path.split("/", 1)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        nonlocal errors
        connection = HTTPConnection(host, int(port), timeout=10)
        mine = []
        bad = 0
        while time.monotonic() < stop:
            started = time.perf_counter()
            connection.request("POST", "/" + path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1e3)
            bad += response.status >= 400
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    values = np.array(latencies)
    return {
        "rps": len(values) / seconds,
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "errors": float(errors),
    }


def _warm(url: str, body: str, headers: dict[str, str]) -> None:
    """Send requests on fresh connections until both workers have loaded and answered."""
    host, port_path = url.removeprefix("http://").split(":", 1)
    port, path = port_path.split("/", 1)
    answered = 0
    deadline = time.monotonic() + 120
    while answered < 6 and time.monotonic() < deadline:
        connection = HTTPConnection(host, int(port), timeout=60)
        try:
            connection.request("POST", "/" + path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{url} answered {response.status}")
            answered += 1
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()


def _load(url: str, body: str, headers: dict[str, str], seconds: int) -> dict[str, float]:
    if shutil.which("wrk"):
        return _wrk(url, body, headers, seconds)
    return _python_load(url, body, headers, seconds)


def _over_http(
    name: str, data: bytes, row: dict[str, float], token: str, seconds: int, rounds: int
) -> None:
    artifact = VAR / f"{name}.joblib"
    artifact.write_bytes(data)
    names = list(row)
    values = list(row.values())
    auth = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    native_body = json.dumps({"instances": [row]})
    routes = {
        "native": (f"/api/v1/models/{name}/predict", native_body),
        "mlflow": (
            f"/mlflow/models/{name}/invocations",
            json.dumps({"dataframe_split": {"columns": names, "data": [values]}}),
        ),
        "v2": (
            f"/v2/models/{name}/infer",
            json.dumps(
                {
                    "inputs": [
                        {"name": "x", "shape": [1, len(values)], "datatype": "FP64", "data": values}
                    ]
                }
            ),
        ),
    }
    env = {
        "MLPLATFORM_VAR_DIR": str(VAR),
        "DJANGO_SETTINGS_MODULE": "mlplatform.settings.local",
        "DJANGO_DEBUG": "0",
        "MLPLATFORM_PRELOAD": "production",
        "BENCH_SERVING_ARTIFACT": str(artifact),
    }
    bare_process, bare_port = _gunicorn("bench.serving:bare_app", env)
    process, port = _gunicorn("mlplatform.wsgi", env)
    targets = {"bare WSGI": (f"http://127.0.0.1:{bare_port}/", native_body)}
    for protocol, (path, body) in routes.items():
        targets[protocol] = (f"http://127.0.0.1:{port}{path}", body)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    try:
        for url, body in targets.values():
            _warm(url, body, auth)
        # Interleaved rounds, medians reported: on a shared machine, load from other processes
        # then hits the baseline and the routes alike instead of whichever ran at a bad moment.
        for _ in range(rounds):
            for target, (url, body) in targets.items():
                results[target].append(_load(url, body, auth, seconds))
    finally:
        _stop(bare_process)
        _stop(process)

    def median(target: str, key: str) -> float:
        return float(np.median([result[key] for result in results[target]]))

    bare_rps = median("bare WSGI", "rps")
    for target in targets:
        rps = median(target, "rps")
        errors = sum(result["errors"] for result in results[target])
        print(
            f"  {target:>9}: {rps:8.0f} req/s  p50 {median(target, 'p50'):6.2f} ms  "
            f"p99 {median(target, 'p99'):6.2f} ms"
            + ("" if target == "bare WSGI" else f"  = {rps / bare_rps:6.1%} of bare")
            + (f"  ({errors:.0f} errors!)" if errors else "")
        )


def main() -> None:
    seconds = int(os.environ.get("BENCH_SERVING_SECONDS", "3"))
    rounds = int(os.environ.get("BENCH_SERVING_ROUNDS", "5"))
    calls = int(os.environ.get("BENCH_SERVING_CALLS", "2000"))
    _django()
    from sklearn.datasets import load_breast_cancer

    token = _token()
    x, _ = load_breast_cancer(return_X_y=True)
    row = {f"f{i}": float(v) for i, v in enumerate(x[0])}
    tool = "wrk" if shutil.which("wrk") else "a Python client (install Debian's wrk for precision)"
    print(
        f"load: {tool}, 8 connections, {rounds} interleaved rounds of {seconds} s per route "
        "(medians); gunicorn 2 sync workers"
    )
    for name, (model, data) in _models().items():
        ready_version(name, model, data, input_example=[row], alias="production")
        print(f"\n{name} ({type(model).__name__}, 30 columns, one row per request)")
        _in_process(model, name, row, token, calls)
        _over_http(name, data, row, token, seconds, rounds)


if __name__ == "__main__":
    main()
