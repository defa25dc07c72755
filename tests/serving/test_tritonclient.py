"""A client nobody here wrote: tritonclient[http], sync and asyncio, against the live /v2 routes,
called as its users call it — with its defaults (binary tensors both ways, no outputs named)."""

import gzip

import numpy as np
import pytest
import requests
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio
from tritonclient.utils import InferenceServerException

from tests.conftest import api_key_for, run_coroutine
from tests.servers import gunicorn_server

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)


@pytest.fixture
def url(live_server):
    return live_server.url.removeprefix("http://")


@pytest.fixture
def client(url):
    return triton.InferenceServerClient(url=url)


@pytest.fixture
def headers(user):
    return {"Authorization": f"Token {api_key_for(user)}"}


def labels(array):
    return [v.decode() if isinstance(v, bytes) else v for v in array]


def test_health_metadata_and_json_infer(client, iris, headers):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris", headers=headers)
    metadata = client.get_model_metadata("iris", headers=headers)
    assert [tensor["name"] for tensor in metadata["inputs"]] == ["f0", "f1", "f2", "f3"]

    tensor = triton.InferInput("input-0", list(ROWS.shape), "FP64")
    tensor.set_data_from_numpy(ROWS, binary_data=False)
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=False),
        triton.InferRequestedOutput("predict_proba", binary_data=False),
    ]
    result = client.infer("iris", [tensor], outputs=outputs, request_id="abc", headers=headers)

    assert result.get_response()["id"] == "abc"
    assert labels(result.as_numpy("predict")) == ["setosa", "virginica"]
    assert result.as_numpy("predict_proba").shape == (2, 3)


def test_defaults_send_and_receive_binary_tensors(client, iris, headers):
    # Given inputs set from numpy as the client does by default (binary data)
    tensor = triton.InferInput("input-0", list(ROWS.shape), "FP64")
    tensor.set_data_from_numpy(ROWS)
    json_tensor = triton.InferInput("input-0", list(ROWS.shape), "FP64")
    json_tensor.set_data_from_numpy(ROWS, binary_data=False)
    reference = client.infer(
        "iris",
        [json_tensor],
        outputs=[triton.InferRequestedOutput("predict_proba", binary_data=False)],
        headers=headers,
    ).as_numpy("predict_proba")

    # When it asks with no outputs, and with outputs requested by name only
    everything = client.infer("iris", [tensor], headers=headers)
    named = client.infer(
        "iris", [tensor], outputs=[triton.InferRequestedOutput("predict_proba")], headers=headers
    )

    # Then every output comes back (in binary), bit for bit what the JSON answer said
    assert labels(everything.as_numpy("predict")) == ["setosa", "virginica"]
    assert everything.get_output("predict")["parameters"]["binary_data_size"] > 0
    np.testing.assert_array_equal(everything.as_numpy("predict_proba"), reference)
    assert named.as_numpy("predict") is None
    np.testing.assert_array_equal(named.as_numpy("predict_proba"), reference)


def test_one_binary_tensor_per_column_of_any_type(client, iris, headers):
    # Given one tensor per column, of different datatypes, sent in binary
    columns = {"f0": ("FP32", np.float32), "f1": ("FP16", np.float16), "f2": ("INT32", np.int32)}
    tensors = []
    for j, name in enumerate(["f0", "f1", "f2", "f3"]):
        datatype, dtype = columns.get(name, ("FP64", np.float64))
        tensor = triton.InferInput(name, [2], datatype)
        tensor.set_data_from_numpy(ROWS[:, j].astype(dtype))
        tensors.append(tensor)

    # When they are sent
    result = client.infer("iris", tensors, headers=headers)

    # Then the model saw them as its columns
    assert labels(result.as_numpy("predict")) == ["setosa", "virginica"]


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests(client, iris, headers, algorithm):
    tensor = triton.InferInput("input-0", list(ROWS.shape), "FP64")
    tensor.set_data_from_numpy(ROWS)

    result = client.infer(
        "iris", [tensor], headers=headers, request_compression_algorithm=algorithm
    )

    assert labels(result.as_numpy("predict")) == ["setosa", "virginica"]


def test_config_repository_index_and_statistics(client, iris, headers):
    config = client.get_model_config("iris", headers=headers)
    assert config["name"] == "iris"
    assert [tensor["name"] for tensor in config["input"]] == ["f0", "f1", "f2", "f3"]
    assert config["output"][0]["data_type"] == "TYPE_STRING"

    index = client.get_model_repository_index(headers=headers)
    assert {"name": "iris", "version": "1", "state": "READY", "reason": ""} in index

    tensor = triton.InferInput("input-0", list(ROWS.shape), "FP64")
    tensor.set_data_from_numpy(ROWS)
    client.infer("iris", [tensor], headers=headers)
    stats = client.get_inference_statistics("iris", headers=headers)["model_stats"]
    assert stats[0]["name"] == "iris"
    assert stats[0]["inference_count"] >= 2
    every = client.get_inference_statistics(headers=headers)["model_stats"]
    assert "iris" in {item["name"] for item in every}


def test_errors_reach_the_client_as_its_exception(client, iris, headers):
    tensor = triton.InferInput("input-0", [1, 3], "FP64")
    tensor.set_data_from_numpy(np.zeros((1, 3)))

    with pytest.raises(InferenceServerException, match="3 columns"):
        client.infer("iris", [tensor], headers=headers)
    with pytest.raises(InferenceServerException, match="explain"):
        client.infer(
            "iris",
            [tensor],
            outputs=[triton.InferRequestedOutput("explain")],
            headers=headers,
        )
    with pytest.raises(InferenceServerException, match="nope"):
        client.get_model_config("nope", headers=headers)
    assert not client.is_model_ready("nope", headers=headers)


def test_asyncio_client_with_its_defaults(url, iris, headers):
    async def scenario():
        client = triton_aio.InferenceServerClient(url=url)
        try:
            ready = await client.is_model_ready("iris", headers=headers)
            metadata = await client.get_model_metadata("iris", headers=headers)
            config = await client.get_model_config("iris", headers=headers)
            index = await client.get_model_repository_index(headers=headers)
            tensor = triton_aio.InferInput("input-0", list(ROWS.shape), "FP64")
            tensor.set_data_from_numpy(ROWS)
            plain = await client.infer("iris", [tensor], headers=headers)
            gzipped = await client.infer(
                "iris",
                [tensor],
                outputs=[triton_aio.InferRequestedOutput("predict")],
                headers=headers,
                request_compression_algorithm="gzip",
            )
            deflated = await client.infer(
                "iris", [tensor], headers=headers, request_compression_algorithm="deflate"
            )
            stats = await client.get_inference_statistics("iris", headers=headers)
        finally:
            await client.close()
        return ready, metadata, config, index, plain, gzipped, deflated, stats

    ready, metadata, config, index, plain, gzipped, deflated, stats = run_coroutine(scenario())

    assert ready
    assert metadata["name"] == "iris"
    assert config["max_batch_size"] == 0
    assert [entry["name"] for entry in index] == ["iris"]
    for result in (plain, gzipped, deflated):
        assert labels(result.as_numpy("predict")) == ["setosa", "virginica"]
    assert plain.as_numpy("predict_proba").shape == (2, 3)
    assert gzipped.as_numpy("predict_proba") is None
    assert stats["model_stats"][0]["execution_count"] >= 3


def test_the_production_server_stack(iris, headers):
    # Given gunicorn with the project's config (request limits, the predict lane, Django)
    with gunicorn_server("tritonclient", MLPLATFORM_MAX_BODY_BYTES="200000") as (base, port):
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        tensor = triton.InferInput("input-0", list(ROWS.shape), "FP64")
        tensor.set_data_from_numpy(ROWS)

        # When tritonclient calls it with its defaults, compressed and not
        results = [
            client.infer("iris", [tensor], headers=dict(headers)),
            client.infer(
                "iris", [tensor], headers=dict(headers), request_compression_algorithm="gzip"
            ),
        ]
        # and a zip bomb and a compressed native prediction are sent
        bomb = requests.post(
            f"{base}/v2/models/iris/infer",
            data=gzip.compress(b" " * (8 << 20)),
            headers={**headers, "Content-Encoding": "gzip", "Content-Type": "application/json"},
            timeout=30,
        )
        native = requests.post(
            f"{base}/api/v1/models/iris/predict",
            data=gzip.compress(b'{"instances": [{"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}]}'),
            headers={**headers, "Content-Encoding": "gzip", "Content-Type": "application/json"},
            timeout=30,
        )

    # Then the predictions come back, the bomb is refused, and every answer names its version
    for result in results:
        assert labels(result.as_numpy("predict")) == ["setosa", "virginica"]
    assert bomb.status_code == 413
    assert "200000 bytes" in bomb.json()["error"]
    assert native.json()["predictions"] == ["setosa"]
    assert native.headers["X-Model-Version"] == "1"
