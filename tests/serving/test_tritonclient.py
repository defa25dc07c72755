"""A client nobody here wrote: tritonclient[http] against the live /v2 routes."""

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.conftest import api_key_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_server):
    return triton.InferenceServerClient(url=live_server.url.removeprefix("http://"))


def test_health_metadata_and_infer(client, iris, user):
    headers = {"Authorization": f"Token {api_key_for(user)}"}

    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris", headers=headers)
    metadata = client.get_model_metadata("iris", headers=headers)
    assert [tensor["name"] for tensor in metadata["inputs"]] == ["f0", "f1", "f2", "f3"]

    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
    tensor = triton.InferInput("input-0", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows, binary_data=False)
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=False),
        triton.InferRequestedOutput("predict_proba", binary_data=False),
    ]
    result = client.infer("iris", [tensor], outputs=outputs, request_id="abc", headers=headers)

    assert result.get_response()["id"] == "abc"
    assert [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict")] == [
        "setosa",
        "virginica",
    ]
    assert result.as_numpy("predict_proba").shape == (2, 3)


def test_binary_data_is_refused_clearly(client, iris, user):
    headers = {"Authorization": f"Token {api_key_for(user)}"}
    tensor = triton.InferInput("input-0", [1, 4], "FP64")
    tensor.set_data_from_numpy(np.zeros((1, 4)), binary_data=True)

    with pytest.raises(InferenceServerException, match="binary tensor data extension"):
        client.infer("iris", [tensor], headers=headers)
