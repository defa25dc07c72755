"""Another client nobody here wrote: the KServe SDK's `InferenceRESTClient`, against the live
server, with `RESTConfig()` as it comes (the V1 protocol) and with `protocol="v2"` (binary
tensors by default)."""

from typing import Any

import httpx
import numpy as np
import pytest
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput

from accounts.models import ApiToken
from tests.conftest import api_key_for, run_coroutine

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
RECORDS = [dict(zip(["f0", "f1", "f2", "f3"], row, strict=True)) for row in ROWS.tolist()]


def run(config: RESTConfig, calls: Any) -> Any:
    """Runs `calls(client)` with a new client on this config, then closes it."""

    async def scenario() -> Any:
        client = InferenceRESTClient(config)
        try:
            return await calls(client)
        finally:
            await client.close()

    return run_coroutine(scenario())


@pytest.fixture
def headers(user):
    return {"Authorization": f"Token {api_key_for(user)}"}


def test_v1_with_the_default_config(live_server, iris, headers):
    base = live_server.url

    async def calls(client):
        ready = await client.is_model_ready(base, "iris", headers=headers)
        rows = await client.infer(
            base, {"instances": ROWS.tolist()}, model_name="iris", headers=headers
        )
        records = await client.infer(
            base, {"instances": RECORDS}, model_name="iris", headers=headers
        )
        return ready, rows, records

    ready, rows, records = run(RESTConfig(), calls)

    assert ready is True
    assert rows == {"predictions": ["setosa", "virginica"]}
    assert records == rows


def test_v1_errors_reach_the_client(live_server, iris, headers):
    base = live_server.url

    async def bad_row(client):
        return await client.infer(
            base, {"instances": [[1.0, 2.0]]}, model_name="iris", headers=headers
        )

    async def unknown(client):
        return await client.is_model_ready(base, "nope", headers=headers)

    with pytest.raises(httpx.HTTPStatusError, match="2 values, expected 4") as bad:
        run(RESTConfig(), bad_row)
    assert bad.value.response.status_code == 400
    assert bad.value.response.json()["error"].startswith("'instances' row 0 has 2 values")
    with pytest.raises(httpx.HTTPStatusError, match="404"):
        run(RESTConfig(), unknown)


def test_v1_with_a_token_scoped_to_the_model(live_server, iris, make_version, user):
    # Given a token that may only predict with iris
    make_version("reg")
    key = api_key_for(user, scope=ApiToken.Scope.PREDICT, predict_models=["iris"])
    scoped = {"Authorization": f"Token {key}"}
    base = live_server.url

    async def iris_call(client):
        return await client.infer(base, {"instances": RECORDS}, model_name="iris", headers=scoped)

    async def reg_call(client):
        return await client.infer(
            base, {"instances": [[0.1, 0.2, 0.3]]}, model_name="reg", headers=scoped
        )

    # Then it predicts with iris, and is refused the other model
    assert run(RESTConfig(), iris_call)["predictions"] == ["setosa", "virginica"]
    with pytest.raises(httpx.HTTPStatusError, match="403"):
        run(RESTConfig(), reg_call)


def test_open_inference_v2_with_binary_tensors(live_server, iris, headers):
    base = live_server.url
    config = RESTConfig(protocol="v2")

    async def calls(client):
        tensor = InferInput("input-0", list(ROWS.shape), "FP64")
        tensor.set_data_from_numpy(ROWS)  # binary by default
        everything = await client.infer(
            base, InferRequest(model_name="iris", infer_inputs=[tensor]), "iris", headers=headers
        )
        asked = InferRequest(
            model_name="iris",
            infer_inputs=[tensor],
            request_outputs=[RequestedOutput("predict_proba", parameters={"binary_data": True})],
            request_id="kserve-1",
        )
        proba = await client.infer(base, asked, "iris", headers=headers)
        ready = await client.is_model_ready(base, "iris", headers=headers)
        return everything, proba, ready

    everything, proba, ready = run(config, calls)

    assert ready is True
    outputs = {output.name: output for output in everything.outputs}
    assert [v.decode() if isinstance(v, bytes) else v for v in outputs["predict"].as_numpy()] == [
        "setosa",
        "virginica",
    ]
    assert outputs["predict_proba"].as_numpy().shape == (2, 3)
    assert proba.id == "kserve-1"
    assert [output.name for output in proba.outputs] == ["predict_proba"]
    np.testing.assert_array_equal(proba.outputs[0].as_numpy(), outputs["predict_proba"].as_numpy())
