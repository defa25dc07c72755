"""Real-time serving: how close the platform's predict routes come to a bare app running the
same model, for models as users fit them: pipelines on pandas DataFrames with named columns.

Models (breast-cancer data as a DataFrame, its 30 float columns renamed to slugs):
StandardScaler + LogisticRegression and a 100-tree random forest, which compile to ONNX and are
served by onnxruntime in the serving process, and a HistGradientBoosting classifier, which does
not compile and is served by a model runner (a sandboxed process on a local socket). Each is
stored as a ready version with a one-record input example, alias `production`.

Two baselines, measured in this run under the same server config (gunicorn with the project's
`mlplatform/gunicorn.py` and its defaults, as users run it: WEB_CONCURRENCY and WEB_THREADS are
not passed on), with no Django:
- bare onnxruntime: JSON → float array in column order → `session.run` on the version's own
  stored graph (one intra-op and one inter-op thread, as serving runs it) → JSON;
- bare scikit-learn: JSON → DataFrame with the named columns → `model.predict` → JSON, what
  a hand-written endpoint on the pickle does (and what the platform did before graphs), with
  one OpenMP/BLAS thread per worker as model runners have (two workers on two cores).

For each model:
1. in process, interleaved one-row calls, p50, one OpenMP/BLAS thread: scikit-learn `predict`
   on a one-row DataFrame, plain and with its re-checks off as runners run it, and on the float
   matrix the route decodes (checks off), vs. the version's engine (onnxruntime, or the runner
   via `serving.runners.runner_outputs` on that matrix, as the route calls it) vs. the native
   route through Django's test client (token auth, validation, JSON) and through the WSGI
   stack gunicorn calls, with and without the predict lane; for a runner, the
   milliseconds it adds over the in-process predict on a DataFrame with the same settings (the
   goal), and over the in-process predict on the matrix (the cost of the process boundary);
2. over HTTP, 8 concurrent connections, load from `wrk` (Debian package) or, if it is missing, a
   Python keep-alive client: the native route (and, for the logistic model, the MLflow and v2
   routes) vs. both baselines, in interleaved rounds.

Goals, printed beside the figures: the native route ≥ 0.70 of the bare onnxruntime app's req/s
(judged on the median of per-round ratios: each round's native figure over the bare figure
measured seconds before it, so that load from other processes that drifts between rounds
weighs on both) with p99 ≤ 10 ms; a runner-served version adds ≤ 0.3 ms p50 over in-process
prediction.

Sizes: BENCH_SERVING_SECONDS (per HTTP target and round, default 3), BENCH_SERVING_ROUNDS
(interleaved rounds, medians reported, default 5), BENCH_SERVING_CALLS (in-process calls per
candidate, default 2000, or fewer when they take over 20 s per model).
"""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import numpy as np

from bench._harness import django_setup, gunicorn, stop
from bench._registry import ready_version

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench-serving"
GOAL_OF_BARE_ONNX = 0.70
GOAL_P99_MS = 10.0
GOAL_RUNNER_ADDED_MS = 0.3
# In-process calls stop after this long per model (but not before MIN_CALLS each).
IN_PROCESS_SECONDS = 20.0
MIN_CALLS = 200


# --- the bare WSGI baselines (run by gunicorn as `bench.serving:bare_app`) --------------------
#
# One app for every model: `/onnx/<name>` runs the version's graph, `/sklearn/<name>` its
# pickle. BENCH_SERVING_MANIFEST names a JSON file with, per model, the graph and artifact files,
# the columns in signature order, and the graph's input layout and precision.

_bare_models: dict[str, Callable[[list[dict[str, Any]]], list[Any]]] = {}


def _bare_onnx(entry: dict[str, Any]) -> Callable[[list[dict[str, Any]]], list[Any]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        Path(entry["graph"]).read_bytes(), options, providers=["CPUExecutionProvider"]
    )
    label = [session.get_outputs()[0].name]
    columns = entry["columns"]
    dtype = np.float64 if entry["precision"] == "float64" else np.float32
    matrix_input = session.get_inputs()[0].name

    def predict(rows: list[dict[str, Any]]) -> list[Any]:
        if entry["layout"] == "matrix":
            feed = {matrix_input: np.array([[row[c] for c in columns] for row in rows], dtype)}
        else:
            feed = {c: np.array([[row[c]] for row in rows], dtype) for c in columns}
        return session.run(label, feed)[0].ravel().tolist()

    return predict


def _bare_sklearn(entry: dict[str, Any]) -> Callable[[list[dict[str, Any]]], list[Any]]:
    import pandas as pd

    from registry.artifacts import load_bytes

    model = load_bytes(Path(entry["artifact"]).read_bytes(), fmt="joblib")
    columns = entry["columns"]

    def predict(rows: list[dict[str, Any]]) -> list[Any]:
        return model.predict(pd.DataFrame(rows, columns=columns)).tolist()

    return predict


def bare_app(environ: dict, start_response: Any) -> list[bytes]:
    """What a hand-written endpoint would do: JSON → model input → predict → JSON."""
    path = environ.get("PATH_INFO", "")
    predict = _bare_models.get(path)
    if predict is None:
        kind, _, name = path.strip("/").partition("/")
        manifest = json.loads(Path(os.environ["BENCH_SERVING_MANIFEST"]).read_text())
        build = {"onnx": _bare_onnx, "sklearn": _bare_sklearn}.get(kind)
        if build is None or name not in manifest:
            start_response("404 Not Found", [("Content-Length", "0")])
            return []
        predict = _bare_models[path] = build(manifest[name])
    length = int(environ.get("CONTENT_LENGTH") or 0)
    rows = json.loads(environ["wsgi.input"].read(length))["instances"]
    body = json.dumps({"predictions": predict(rows)}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


# --- set-up -------------------------------------------------------------------------------


@dataclass
class Served:
    """One stored model: what the benchmark needs of it, and the figures it collected."""

    name: str
    estimator: Any
    version: Any
    frame: Any  # the one-row DataFrame with the named columns
    row: dict[str, float]
    http: dict[str, dict[str, float]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    in_process: dict[str, float] = field(default_factory=dict)

    @property
    def runner(self) -> bool:
        return bool(self.version.engine == "python")


def _slug(column: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", column.lower()).strip("_")


def _dump(estimator: Any) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def _models() -> list[Served]:
    """Fit and store the three models; a second, runner-served copy of the logistic pipeline
    if HistGradientBoosting unexpectedly compiled (so a runner is measured either way)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from registry.models import ModelVersion

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x = x.rename(columns=_slug)
    frame = x.iloc[:1].copy()
    row = {column: float(value) for column, value in frame.iloc[0].items()}
    fitted = {
        "bc-logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "bc-forest": RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1),
        "bc-hgb": HistGradientBoostingClassifier(random_state=0),
    }
    served = []
    for name, estimator in fitted.items():
        estimator.fit(x, y)
        version = ready_version(name, _dump(estimator), input_example=[row], alias="production")
        served.append(Served(name, estimator, version, frame, row))
    if not any(model.runner for model in served):
        name, estimator = "bc-logreg-runner", fitted["bc-logreg"]
        version = ready_version(name, _dump(estimator), input_example=[row], alias="production")
        ModelVersion.objects.filter(pk=version.pk).update(
            engine=ModelVersion.Engine.PYTHON, graph="", graph_sha256=""
        )
        version.refresh_from_db()
        served.append(Served(name, estimator, version, frame, row))
    return served


def _manifest(served: list[Served]) -> Path:
    """The files the bare app serves: each version's stored graph and artifact, as stored."""
    folder = VAR / "bare"
    folder.mkdir(exist_ok=True)
    manifest: dict[str, dict[str, Any]] = {}
    for model in served:
        version = model.version
        artifact = folder / f"{model.name}.joblib"
        with version.artifact.open("rb") as stream:
            artifact.write_bytes(stream.read())
        entry: dict[str, Any] = {
            "artifact": str(artifact),
            "graph": None,
            "columns": version.signature.column_names,
            "layout": (version.compilation or {}).get("inputs", "matrix"),
            "precision": (version.compilation or {}).get("precision", "float64"),
        }
        if version.graph:
            graph = folder / f"{model.name}.onnx"
            with version.graph.open("rb") as stream:
                graph.write_bytes(stream.read())
            entry["graph"] = str(graph)
        manifest[model.name] = entry
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def _token() -> str:
    from django.contrib.auth import get_user_model

    from accounts.services import token_create

    user = get_user_model().objects.create_user("bench", password="bench-pw-123")
    return token_create(user=user, name="bench")[1]


# --- in-process -----------------------------------------------------------------------------


def _p50s(
    candidates: dict[str, Callable[[], Any]], calls: int, seconds: float
) -> tuple[dict[str, float], int]:
    """Median milliseconds per call of each candidate, called in turn (interleaved, so a
    neighbour's burst slows them alike), and how many calls each got: `calls`, or fewer if
    they take more than `seconds` in all (a slow model on a loaded machine)."""
    timings: dict[str, list[float]] = {name: [] for name in candidates}
    for call in candidates.values():
        call()
    deadline = time.monotonic() + seconds
    done = 0
    while done < calls and (done < MIN_CALLS or time.monotonic() < deadline):
        for name, call in candidates.items():
            started = time.perf_counter()
            call()
            timings[name].append(time.perf_counter() - started)
        done += 1
    return {name: float(np.median(values)) * 1e3 for name, values in timings.items()}, done


def _in_process(model: Served, token: str, calls: int) -> None:
    import warnings

    from rest_framework.test import APIClient
    from threadpoolctl import threadpool_limits

    from serving import cache
    from serving.codecs.columns import columns_to_matrix
    from serving.services import validated_input

    estimator, frame = model.estimator, model.frame
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    body = json.dumps({"instances": [model.row]})
    path = f"/api/v1/models/{model.name}/predict"
    response = client.post(path, body, content_type="application/json")
    if response.status_code != 200:
        model.failed["in process"] = f"{response.status_code}: {response.content[:300]!r}"
        print(f"  in process: the native route answered {model.failed['in process']}")
        return

    # What the route hands its engine: the request's values checked against the signature and
    # assembled by serving.codecs (a float64 matrix in signature column order for these models).
    matrix = columns_to_matrix(
        {name: [value] for name, value in model.row.items()}, model.version.signature, n_rows=1
    )

    def checked() -> Any:
        # The runner's own settings: scikit-learn's finiteness and parameter re-checks off.
        with validated_input():
            return estimator.predict(frame)

    def checked_matrix() -> Any:
        with validated_input():
            return estimator.predict(matrix)

    candidates: dict[str, Callable[[], Any]] = {
        "sklearn": lambda: estimator.predict(frame),
        "sklearn, checks off": checked,
    }
    if model.runner:
        from serving import runners
        from serving.engines import runner_spec

        spec = runner_spec(model.version)
        candidates["sklearn on the matrix, checks off"] = checked_matrix
        candidates["runner"] = lambda: runners.runner_outputs(spec, matrix, ["predict"])
    else:
        engine = cache.engine_for(model.version)
        candidates["onnx"] = lambda: engine.outputs(matrix, ["predict"])
    candidates["route"] = lambda: client.post(path, body, content_type="application/json")
    # The WSGI stack gunicorn calls (request limits, the predict lane, Django), with and without
    # the lane: what the lane saves per request, free of the HTTP server and the load.
    lane, plain = _stacks()
    candidates["stack"] = lambda: _wsgi_post(lane, path, body.encode(), token)
    candidates["stack without the lane"] = lambda: _wsgi_post(plain, path, body.encode(), token)
    # One OpenMP/BLAS thread, as model runners and the bare apps run: two threads per process
    # on this two-core machine would only contend with the other worker.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        p50, done = _p50s(candidates, calls, IN_PROCESS_SECONDS)
    model.in_process = p50
    engine_name = "runner_outputs" if model.runner else "onnxruntime engine"
    engine_p50 = p50["runner" if model.runner else "onnx"]
    print(
        f"  in process, {done} interleaved one-row calls, p50: scikit-learn predict on a "
        f"DataFrame {p50['sklearn']:.3f} ms ({p50['sklearn, checks off']:.3f} with its checks "
        f"off) | {engine_name} {engine_p50:.3f} ms | native route via test client "
        f"{p50['route']:.3f} ms | through the WSGI stack {p50['stack']:.3f} ms "
        f"({p50['stack without the lane']:.3f} ms without the predict lane)"
    )
    if model.runner:
        added = p50["runner"] - p50["sklearn, checks off"]
        boundary = p50["runner"] - p50["sklearn on the matrix, checks off"]
        print(
            f"  runner adds {added:+.3f} ms p50 over in-process predict with the same settings "
            f"(goal ≤ {GOAL_RUNNER_ADDED_MS} ms: {_verdict(added <= GOAL_RUNNER_ADDED_MS)}); "
            f"{p50['runner'] - p50['sklearn']:+.3f} ms over a plain predict; "
            f"{boundary:+.3f} ms over an in-process predict on the same float matrix "
            f"({p50['sklearn on the matrix, checks off']:.3f} ms: the runner passes the matrix "
            "bare when the model answers it as it answers the DataFrame)"
        )


def _stacks() -> tuple[Any, Any]:
    """The project's WSGI application as gunicorn runs it, and the same without the lane."""
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    from mlplatform.wsgi import build

    layers = settings.MLPLATFORM_WSGI_LAYERS
    plain_layers = [layer for layer in layers if not layer.endswith("NativePredictLane")]
    settings.MLPLATFORM_WSGI_LAYERS = plain_layers
    try:
        plain = build(WSGIHandler())
    finally:
        settings.MLPLATFORM_WSGI_LAYERS = layers
    return build(WSGIHandler()), plain


def _wsgi_post(app: Any, path: str, body: bytes, token: str) -> bytes:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
    }
    status: list[str] = []
    chunks = app(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        content = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    if not status[0].startswith("200"):
        raise RuntimeError(f"the WSGI stack answered {status[0]}: {content[:300]!r}")
    return content


# --- over HTTP ----------------------------------------------------------------------------


def _server_config() -> str:
    """The workers and threads `mlplatform/gunicorn.py` gives without WEB_* overrides."""
    saved = {name: os.environ.pop(name, None) for name in ("WEB_CONCURRENCY", "WEB_THREADS")}
    try:
        import importlib

        import mlplatform.gunicorn as config

        config = importlib.reload(config)
    finally:
        os.environ.update({name: value for name, value in saved.items() if value is not None})
    kind = f"gthread workers of {config.threads} threads" if config.threads > 1 else "sync workers"
    return f"{config.workers} {kind}"


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


def _warm(url: str, body: str, headers: dict[str, str]) -> str | None:
    """Send requests on fresh connections until both workers have loaded and answered; the
    error (status and body) if the target does not answer 200."""
    host, port_path = url.removeprefix("http://").split(":", 1)
    port, path = port_path.split("/", 1)
    answered = 0
    deadline = time.monotonic() + 120
    while answered < 6:
        if time.monotonic() > deadline:
            return "no answer within 120 s"
        connection = HTTPConnection(host, int(port), timeout=60)
        try:
            connection.request("POST", "/" + path, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
            if response.status != 200:
                return f"{response.status}: {content[:300].decode(errors='replace')}"
            answered += 1
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    return None


def _load(url: str, body: str, headers: dict[str, str], seconds: int) -> dict[str, float]:
    if shutil.which("wrk"):
        return _wrk(url, body, headers, seconds)
    return _python_load(url, body, headers, seconds)


def _targets(model: Served, bare_port: int, port: int) -> dict[str, tuple[str, str]]:
    """Target name → (URL, body): the baselines, then the platform's routes."""
    row = model.row
    names, values = list(row), list(row.values())
    native_body = json.dumps({"instances": [row]})
    targets = {}
    if not model.runner:
        targets["bare onnx"] = (f"http://127.0.0.1:{bare_port}/onnx/{model.name}", native_body)
    targets["bare sklearn"] = (f"http://127.0.0.1:{bare_port}/sklearn/{model.name}", native_body)
    base = f"http://127.0.0.1:{port}"
    targets["native"] = (f"{base}/api/v1/models/{model.name}/predict", native_body)
    if model.name == "bc-logreg":
        mlflow = {"dataframe_split": {"columns": names, "data": [values]}}
        tensor = {"name": "x", "shape": [1, len(values)], "datatype": "FP64", "data": values}
        targets["mlflow"] = (f"{base}/mlflow/models/{model.name}/invocations", json.dumps(mlflow))
        targets["v2"] = (f"{base}/v2/models/{model.name}/infer", json.dumps({"inputs": [tensor]}))
    return targets


def _over_http(
    model: Served, bare_port: int, port: int, token: str, seconds: int, rounds: int
) -> None:
    auth = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    targets = _targets(model, bare_port, port)
    for target, (url, body) in list(targets.items()):
        error = _warm(url, body, auth)
        if error:
            model.failed[target] = error
            del targets[target]
    results: dict[str, list[dict[str, float]]] = {target: [] for target in targets}
    # Interleaved rounds, medians reported: on a shared machine, load from other processes then
    # hits the baselines and the routes alike instead of whichever ran at a bad moment.
    for _ in range(rounds):
        for target, (url, body) in targets.items():
            results[target].append(_load(url, body, auth, seconds))

    for target, runs in results.items():
        model.http[target] = {
            key: float(np.median([run[key] for run in runs])) for key in ("rps", "p50", "p99")
        }
        model.http[target]["errors"] = sum(run["errors"] for run in runs)
    # Each round's own ratio to the bare onnxruntime app measured just before it: load from other
    # processes that drifts between rounds then moves both sides of a ratio alike.
    for target, runs in results.items():
        if "bare onnx" in results and not target.startswith("bare"):
            bares = results["bare onnx"]
            paired = [run["rps"] / bare["rps"] for run, bare in zip(runs, bares, strict=True)]
            model.http[target]["of bare onnx, per round"] = float(np.median(paired))
    for target in _targets(model, bare_port, port):
        if target in model.failed:
            print(f"  {target:>12}: FAILED, {model.failed[target]}")
            continue
        figures = model.http[target]
        ratios = "".join(
            f"  {figures['rps'] / model.http[bare]['rps']:5.2f} of {bare}"
            for bare in ("bare onnx", "bare sklearn")
            if not target.startswith("bare") and bare in model.http
        )
        if "of bare onnx, per round" in figures:
            ratios += f" (median of per-round ratios {figures['of bare onnx, per round']:.2f})"
        print(
            f"  {target:>12}: {figures['rps']:7.0f} req/s  p50 {figures['p50']:6.2f} ms  "
            f"p99 {figures['p99']:6.2f} ms{ratios}"
            + (f"  ({figures['errors']:.0f} errors!)" if figures["errors"] else "")
        )


# --- report ---------------------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _goals(served: list[Served]) -> None:
    print("\ngoals (medians):")
    for model in served:
        native = model.http.get("native")
        if native is None:
            print(f"  {model.name}: native route failed, no figures")
            continue
        p99 = (
            f"p99 {native['p99']:.2f} ms (goal ≤ {GOAL_P99_MS:.0f} ms: "
            f"{_verdict(native['p99'] <= GOAL_P99_MS)})"
        )
        sklearn = model.http.get("bare sklearn")
        of_sklearn = f"{native['rps'] / sklearn['rps']:.2f} of bare scikit-learn" if sklearn else ""
        if model.runner:
            added = model.in_process.get("runner", float("nan")) - model.in_process.get(
                "sklearn, checks off", float("nan")
            )
            print(
                f"  {model.name} (runner): native {of_sklearn}, {p99}; runner adds "
                f"{added:+.3f} ms p50 in process (goal ≤ {GOAL_RUNNER_ADDED_MS} ms: "
                f"{_verdict(added <= GOAL_RUNNER_ADDED_MS)})"
            )
            continue
        ratio = native.get("of bare onnx, per round", float("nan"))
        print(
            f"  {model.name} (onnx): native {ratio:.2f} of bare onnxruntime, median of "
            f"per-round ratios (goal ≥ "
            f"{GOAL_OF_BARE_ONNX:.2f}: {_verdict(ratio >= GOAL_OF_BARE_ONNX)}), {of_sklearn}, {p99}"
        )


def main() -> None:
    seconds = int(os.environ.get("BENCH_SERVING_SECONDS", "3"))
    rounds = int(os.environ.get("BENCH_SERVING_ROUNDS", "5"))
    calls = int(os.environ.get("BENCH_SERVING_CALLS", "2000"))
    django_setup(VAR)
    token = _token()
    served = _models()
    tool = "wrk" if shutil.which("wrk") else "a Python client (install Debian's wrk for precision)"
    print(
        f"load: {tool}, 8 connections, {rounds} interleaved rounds of {seconds} s per target "
        f"(medians); gunicorn {_server_config()} for the platform and for the bare apps"
    )
    env = {
        "MLPLATFORM_VAR_DIR": str(VAR),
        "DJANGO_SETTINGS_MODULE": "mlplatform.settings.local",
        "DJANGO_DEBUG": "0",
        "MLPLATFORM_PRELOAD": "production",
        "BENCH_SERVING_MANIFEST": str(_manifest(served)),
    }
    # The bare apps get one OpenMP/BLAS thread per worker, as model runners have: with two
    # workers on two cores, more only oversubscribes (HistGradientBoosting's one-row predict
    # is several times slower with two OpenMP threads per worker).
    single = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")
    bare_process, bare_port = gunicorn("bench.serving:bare_app", {**env, **single}, var=VAR)
    try:
        process, port = gunicorn("mlplatform.wsgi", env, var=VAR)
        try:
            for model in served:
                version = model.version
                print(
                    f"\n{model.name} ({version.signature.estimator}, fitted on a DataFrame with "
                    f"{len(model.row)} named columns; engine {version.engine}; one row per request)"
                )
                if model.runner:
                    reason = (version.compilation or {}).get("fallback_reason", "")
                    print(f"  not compiled: {reason.splitlines()[0][:120] if reason else '-'}")
                _in_process(model, token, calls)
                _over_http(model, bare_port, port, token, seconds, rounds)
        finally:
            stop(process)
    finally:
        stop(bare_process)
        from serving import runners

        runners.runners_stop()
    _goals(served)


if __name__ == "__main__":
    main()
