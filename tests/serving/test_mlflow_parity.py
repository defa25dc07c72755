"""MLflow scoring parity: one fitted scikit-learn pipeline, saved with `mlflow.sklearn.save_model`
and served by a real `mlflow models serve`, and registered on the platform; every body of the
table below goes to both, and both give the same status, the same predictions and the same
`error_code`. The bodies are built as MLflow users build them: with MLflow's own helpers
(`convert_input_example_to_serving_input`, `dump_input_data`) and with pandas' `to_csv()` and
`to_parquet()`.

Left out of the table on purpose (docs/serving.md lists them): what MLflow accepts and the
platform refuses (numeric strings and booleans as numbers), what the platform accepts and MLflow
refuses (row lists in signature order for a model with a string column, integer Parquet columns
for a float column, a pandas category of strings in Parquet), and `params.predict_method`,
which MLflow ignores for scikit-learn models.
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.models import infer_signature
from mlflow.models.utils import convert_input_example_to_serving_input
from mlflow.utils.proto_json_utils import dump_input_data

from registry.models import ModelVersion
from serving.codecs import mlflow as mlflow_codec
from tests.servers import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.services]

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"

# The rows sent: the pipeline ("colors" in conftest) takes a number `x` and a category `color`.
FRAME = pd.DataFrame(
    {"x": [0.5, -1.2, 2.0, -0.1], "color": ["red", "green", "blue", "red"]},
)
IDS = FRAME.assign(id=["r101", "r102", "r103", "r104"])[["id", "x", "color"]]


@pytest.fixture(scope="session")
def mlflow_server(
    fitted: dict[str, tuple[Any, list[dict[str, Any]]]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`mlflow models serve` of the pipeline, started once for the session; yields its URL."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no usage reports from a test
    pipeline, _ = fitted["colors"]
    root = tmp_path_factory.mktemp("mlflow")
    model_dir = root / "model"
    mlflow.sklearn.save_model(
        pipeline,
        str(model_dir),
        signature=infer_signature(FRAME, pipeline.predict(FRAME)),
        pip_requirements=["scikit-learn"],  # no environment inference: served locally
    )
    port = free_port()
    env = os.environ.copy()
    # MLflow starts `uvicorn` by name: the one installed beside this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    log = (root / "mlflow-serve.log").open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir)),
            *("--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base}/ping", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow models serve did not start: see {root / 'mlflow-serve.log'}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def colors(make_version: Callable[..., ModelVersion]) -> ModelVersion:
    """The same fitted pipeline as a ready version on the platform."""
    return make_version("colors")


def _split(example: Any) -> str:
    """MLflow's serving input for an input example (`dataframe_split` for a DataFrame)."""
    served = convert_input_example_to_serving_input(example)
    assert served is not None
    return served


def _with(**columns: Any) -> pd.DataFrame:
    return FRAME.assign(**columns)


# name → (content type, body): each sent to both servers.
CASES: dict[str, tuple[str, str | bytes]] = {
    # JSON, as MLflow's helpers write it
    "dataframe_split": (JSON, _split(FRAME)),
    "dataframe_split with an index": (JSON, dump_input_data(FRAME)),
    "dataframe_split with an id column": (JSON, _split(IDS)),
    "dataframe_records": (
        JSON,
        dump_input_data(FRAME.to_dict(orient="records"), inputs_key="dataframe_records"),
    ),
    "dataframe_records with an id column": (
        JSON,
        dump_input_data(IDS.to_dict(orient="records"), inputs_key="dataframe_records"),
    ),
    "instances as records": (
        JSON,
        dump_input_data(FRAME.to_dict(orient="records"), inputs_key="instances"),
    ),
    "inputs as records": (JSON, _split(FRAME.to_dict(orient="records"))),
    "inputs as columns": (
        JSON,
        _split({name: FRAME[name].to_numpy() for name in FRAME.columns}),
    ),
    "inputs as columns with an id column": (
        JSON,
        json.dumps({"inputs": IDS.to_dict(orient="list")}),
    ),
    "an unknown top-level key": (
        JSON,
        json.dumps({"dataframe_records": FRAME.to_dict(orient="records"), "extra": 1}),
    ),
    "a missing column": (JSON, _split(FRAME[["x"]])),
    "a missing column in records": (
        JSON,
        dump_input_data(FRAME[["color"]].to_dict(orient="records"), inputs_key="dataframe_records"),
    ),
    "text in a number column": (JSON, _split(_with(x=["a", "b", "c", "d"]))),
    "a number in a text column": (
        JSON,
        dump_input_data(_with(color=[1, 2, 3, 4]).to_dict(orient="records"), "dataframe_records"),
    ),
    "a null": (
        JSON,
        json.dumps({"dataframe_records": [{"x": None, "color": "red"}]}),
    ),
    "NaN": (JSON, _split(_with(x=[np.nan, 1.0, 2.0, 3.0]))),
    "a category the model never saw": (JSON, _split(_with(color=["pink"] * 4))),
    "ragged rows": (
        JSON,
        json.dumps({"dataframe_split": {"columns": ["x", "color"], "data": [[1.0, "red"], [2.0]]}}),
    ),
    "dataframe_split with an unknown key": (
        JSON,
        json.dumps({"dataframe_split": {**FRAME.to_dict(orient="split"), "extra": 1}}),
    ),
    "two formats": (
        JSON,
        json.dumps(
            {
                "inputs": FRAME.to_dict(orient="list"),
                "dataframe_records": FRAME.to_dict(orient="records"),
            }
        ),
    ),
    "no format": (JSON, json.dumps({"columns": ["x", "color"]})),
    "not JSON": (JSON, "{nope"),
    "a JSON list": (JSON, "[1, 2]"),
    # CSV, as pandas writes it
    "CSV with the index column": (CSV, FRAME.to_csv()),
    "CSV without the index": (CSV, FRAME.to_csv(index=False)),
    "CSV with an id column": (CSV, IDS.to_csv(index=False)),
    "CSV with a missing column": (CSV, FRAME[["x"]].to_csv(index=False)),
    "CSV with text in a number column": (CSV, _with(x=["a", "b", "c", "d"]).to_csv()),
    "CSV with an empty cell": (CSV, _with(x=[None, 1.0, 2.0, 3.0]).to_csv(index=False)),
    "an empty CSV body": (CSV, ""),
    "CSV with a header and no rows": (CSV, "x,color\n"),
    # Parquet, as pandas writes it
    "Parquet": (PARQUET, FRAME.to_parquet()),
    "Parquet with a named index": (PARQUET, IDS.set_index("id").to_parquet()),
    "Parquet with an id column": (PARQUET, IDS.to_parquet()),
    "Parquet with an extra nested column": (PARQUET, _with(tags=[[1], [2], [3], [4]]).to_parquet()),
    "Parquet with a missing column": (PARQUET, FRAME[["x"]].to_parquet()),
    "Parquet with text in a number column": (PARQUET, _with(x=["a", "b", "c", "d"]).to_parquet()),
    "Parquet with float32 numbers": (PARQUET, _with(x=FRAME["x"].astype("float32")).to_parquet()),
    "Parquet with a null": (PARQUET, _with(x=[np.nan, 1.0, 2.0, 3.0]).to_parquet()),
    "Parquet with a null text": (PARQUET, _with(color=["red", None, "red", "red"]).to_parquet()),
    "Parquet with booleans in a number column": (
        PARQUET,
        _with(x=[True, False, True, False]).to_parquet(),
    ),
    "Parquet with numbers in a text column": (PARQUET, _with(color=[1, 2, 3, 4]).to_parquet()),
    "Parquet with lists in a number column": (
        PARQUET,
        _with(x=[[1.0], [2.0], [3.0], [4.0]]).to_parquet(),
    ),
    "Parquet with a category the model never saw": (
        PARQUET,
        _with(color=["pink"] * 4).to_parquet(),
    ),
    "Parquet with no rows": (PARQUET, FRAME.iloc[:0].to_parquet()),
    "not Parquet": (PARQUET, b"PAR1 and nothing else"),
    # content types
    "JSON with charset=utf-8": (f"{JSON}; charset=utf-8", _split(FRAME)),
    "JSON with another charset": (f"{JSON}; charset=latin-1", _split(FRAME)),
    "JSON with an unknown parameter": (f"{JSON}; format=pandas-split", _split(FRAME)),
    "XML": ("application/xml", "<rows/>"),
}


def _answer(response: Any) -> tuple[int, Any]:
    """(status, predictions or error_code): what must agree. MLflow answers 415 in plain text."""
    if response.status_code == 415:
        return 415, None
    body = response.json()
    if response.status_code == 200:
        return 200, body["predictions"]
    return response.status_code, body["error_code"]


def test_every_body_gets_the_same_answer_from_mlflow_and_the_platform(
    mlflow_server: str, api_client: Any, colors: ModelVersion
) -> None:
    mismatches, outcomes = {}, set()
    for name, (content_type, body) in CASES.items():
        expected = requests.post(
            f"{mlflow_server}/invocations",
            data=body,
            headers={"Content-Type": content_type},
            timeout=30,
        )
        actual = api_client.post(
            "/mlflow/models/colors/invocations", body, content_type=content_type
        )
        if _answer(actual) != _answer(expected):
            mismatches[name] = {"mlflow": _answer(expected), "platform": _answer(actual)}
        outcomes.add(_answer(actual)[0] if actual.status_code == 200 else _answer(actual)[1])

    assert not mismatches, json.dumps(mismatches, indent=1, default=str)
    # The table reaches predictions and each of MLflow's error codes.
    assert {200, "BAD_REQUEST", "INVALID_PARAMETER_VALUE", None} <= outcomes


def test_version_answers_what_mlflow_answers(
    mlflow_server: str, api_client: Any, colors: ModelVersion
) -> None:
    expected = requests.get(f"{mlflow_server}/version", timeout=30)

    actual = api_client.get("/mlflow/models/colors/version")
    pinned = api_client.get("/mlflow/models/colors/versions/1/version")

    assert actual.status_code == pinned.status_code == expected.status_code == 200
    # The release mirrored is the one the parity table above was checked against.
    assert actual.content.decode() == pinned.content.decode() == expected.text
    assert expected.text == mlflow_codec.MLFLOW_VERSION
    assert actual["Content-Type"] == expected.headers["Content-Type"]
    assert actual["X-Model-Version"] == pinned["X-Model-Version"] == "1"
