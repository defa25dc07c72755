"""The Open Inference route (`POST /v2/models/{name}/infer`) with binary tensors vs JSON tensors,
for a 1,000-row x 30-column request: decode, predict and encode, end to end.

Model: StandardScaler + LogisticRegression on the breast-cancer data (30 float columns), stored
through the registry's services (so it is served by its compiled ONNX graph, as users get it).
The request: 1,000 rows drawn from the data as one FP64 tensor `[1000, 30]`, asking for both
outputs (`predict`, `predict_proba`).

1. In process, through Django's test client (token auth, the view, the codecs, the model):
   the JSON request and answer vs the binary request asking for binary outputs, interleaved
   calls, p50.
2. Over HTTP against gunicorn with the project's config (`mlplatform/gunicorn.py`), as a client
   calls it: `tritonclient.http` with `binary_data=False` on the input and both outputs vs its
   defaults (binary both ways), interleaved calls, p50 of the whole call (encoding the request,
   the server's work, decoding the answer into numpy).

The figures are ratios against the JSON request measured in the same run. Goal: binary at least
3x faster end to end (over HTTP). Never fails on timing.

Size: BENCH_OPEN_INFERENCE_CALLS (calls per candidate and setting, default 60).
"""

import io
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.http as triton

from bench._harness import django_setup, gunicorn, stop
from bench._registry import ready_version

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench-open-inference"
GOAL = 3.0
ROWS = 1000
MODEL = "bc-wide"


def _model() -> np.ndarray:
    """Stores the model; returns the 1,000 request rows."""
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [f"c{j:02d}" for j in range(x.shape[1])]
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    example = [{column: float(value) for column, value in x.iloc[0].items()}]
    version = ready_version(MODEL, buffer.getvalue(), input_example=example, alias="production")
    print(f"{MODEL}: {version.signature.estimator}, engine {version.engine}, {x.shape[1]} columns")
    rows = x.to_numpy()[np.random.default_rng(0).integers(0, len(x), size=ROWS)]
    return np.ascontiguousarray(rows, dtype=np.float64)


def _token() -> str:
    from django.contrib.auth import get_user_model

    from accounts.services import token_create

    user = get_user_model().objects.create_user("bench", password="bench-pw-123")
    return token_create(user=user, name="bench")[1]


def _p50s(candidates: dict[str, Callable[[], Any]], calls: int) -> dict[str, float]:
    """Median milliseconds per call of each candidate, called in turn (interleaved)."""
    timings: dict[str, list[float]] = {name: [] for name in candidates}
    for call in candidates.values():
        call()  # warm
    for _ in range(calls):
        for name, call in candidates.items():
            started = time.perf_counter()
            call()
            timings[name].append((time.perf_counter() - started) * 1e3)
    return {name: statistics.median(values) for name, values in timings.items()}


# --- in process -----------------------------------------------------------------------------


def _bodies(rows: np.ndarray) -> tuple[bytes, tuple[bytes, str]]:
    """(the JSON request, (the binary request, its header length))."""
    outputs = [{"name": "predict"}, {"name": "predict_proba"}]
    plain = {
        "inputs": [
            {"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.tolist()}
        ],
        "outputs": outputs,
    }
    raw = rows.astype("<f8").tobytes()
    header = {
        "inputs": [
            {
                "name": "x",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [{**o, "parameters": {"binary_data": True}} for o in outputs],
    }
    head = json.dumps(header).encode()
    return json.dumps(plain).encode(), (head + raw, str(len(head)))


def _in_process(rows: np.ndarray, token: str, calls: int) -> float:
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    path = f"/v2/models/{MODEL}/infer"
    plain, (binary, length) = _bodies(rows)

    def as_json() -> None:
        response = client.post(path, plain, content_type="application/json")
        assert response.status_code == 200, response.content[:300]
        json.loads(response.content)

    def as_binary() -> None:
        response = client.post(
            path,
            binary,
            content_type="application/octet-stream",
            HTTP_INFERENCE_HEADER_CONTENT_LENGTH=length,
        )
        assert response.status_code == 200, response.content[:300]
        size = int(response["Inference-Header-Content-Length"])
        json.loads(response.content[:size])

    p50 = _p50s({"json": as_json, "binary": as_binary}, calls)
    ratio = p50["json"] / p50["binary"]
    print(
        f"  in process (Django test client, {calls} calls each): JSON {p50['json']:.1f} ms, "
        f"binary {p50['binary']:.1f} ms p50; binary {ratio:.1f}x faster"
    )
    return ratio


# --- over HTTP ------------------------------------------------------------------------------


def _over_http(rows: np.ndarray, token: str, calls: int) -> float:
    process, port = gunicorn(
        "mlplatform.wsgi",
        {
            "MLPLATFORM_VAR_DIR": str(VAR),
            "DJANGO_SETTINGS_MODULE": "mlplatform.settings.local",
            "DJANGO_DEBUG": "0",
            "MLPLATFORM_PRELOAD": "production",
            "MLPLATFORM_LOG_SAMPLE_RATE": "0",
        },
        var=VAR,
    )
    try:
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}", network_timeout=120)
        headers = {"Authorization": f"Token {token}"}

        def infer(binary: bool) -> Callable[[], None]:
            def call() -> None:
                tensor = triton.InferInput("x", list(rows.shape), "FP64")
                tensor.set_data_from_numpy(rows, binary_data=binary)
                outputs = [
                    triton.InferRequestedOutput("predict", binary_data=binary),
                    triton.InferRequestedOutput("predict_proba", binary_data=binary),
                ]
                # A new headers dict per call: tritonclient adds Inference-Header-Content-Length
                # to the one it is given, which a later JSON request would then carry.
                result = client.infer(MODEL, [tensor], outputs=outputs, headers=dict(headers))
                assert result.as_numpy("predict_proba").shape == (len(rows), 2)

            return call

        p50 = _p50s({"json": infer(False), "binary": infer(True)}, calls)
    finally:
        stop(process)
    ratio = p50["json"] / p50["binary"]
    print(
        f"  over HTTP (tritonclient.http, gunicorn, {calls} calls each): JSON "
        f"{p50['json']:.1f} ms, binary {p50['binary']:.1f} ms p50; binary {ratio:.1f}x faster"
    )
    return ratio


def main() -> None:
    calls = int(os.environ.get("BENCH_OPEN_INFERENCE_CALLS", "60"))
    django_setup(VAR, MLPLATFORM_LOG_SAMPLE_RATE="0")
    rows = _model()
    token = _token()
    print(f"request: {ROWS} rows x {rows.shape[1]} FP64 columns, outputs predict and predict_proba")
    in_process = _in_process(rows, token, calls)
    over_http = _over_http(rows, token, calls)
    verdict = "met" if over_http >= GOAL else "NOT met"
    print(
        f"goal: binary >= {GOAL:.0f}x faster than JSON end to end (over HTTP): {over_http:.1f}x, "
        f"{verdict} (in process: {in_process:.1f}x)"
    )
    from serving import runners

    runners.runnersstop()


if __name__ == "__main__":
    main()
