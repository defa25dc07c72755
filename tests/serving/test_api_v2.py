"""Open Inference Protocol v2 under /v2 (the raw JSON; tritonclient is in test_tritonclient)."""

import pytest

pytestmark = pytest.mark.django_db

INFER = "/v2/models/iris/infer"
ROW = [5.1, 3.5, 1.4, 0.2]


def test_health_is_public_and_server_metadata_needs_a_token(anon_client, api_client):
    assert anon_client.get("/v2/health/live").json() == {"live": True}
    assert anon_client.get("/v2/health/ready").status_code == 200
    assert anon_client.get("/v2").status_code == 401
    assert api_client.get("/v2").json()["name"] == "mlplatform"


def test_model_metadata_from_signature(api_client, iris):
    body = api_client.get("/v2/models/iris").json()

    assert body["name"] == "iris"
    assert body["versions"] == ["1"]
    assert [i["name"] for i in body["inputs"]] == ["f0", "f1", "f2", "f3"]
    assert {i["datatype"] for i in body["inputs"]} == {"FP64"}
    assert body["outputs"][0] == {"name": "predict", "datatype": "BYTES", "shape": [-1]}
    assert body["outputs"][1]["shape"] == [-1, 3]
    assert api_client.get("/v2/models/iris/versions/1/ready").json()["ready"] is True


def test_infer_2d_tensor_echoes_id(api_client, iris):
    body = {
        "id": "req-42",
        "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [ROW, ROW]}],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }

    response = api_client.post(INFER, body, format="json")

    result = response.json()
    assert response.status_code == 200, result
    assert result["id"] == "req-42"
    assert result["model_version"] == "1"
    predict, proba = result["outputs"]
    assert predict == {"name": "predict", "datatype": "BYTES", "shape": [2], "data": ["setosa"] * 2}
    assert proba["shape"] == [2, 3]
    assert len(proba["data"]) == 6


def test_infer_one_tensor_per_column_any_order(api_client, iris):
    inputs = [
        {"name": name, "shape": [1], "datatype": "FP32", "data": [value]}
        for name, value in reversed(list(zip(["f0", "f1", "f2", "f3"], ROW, strict=True)))
    ]

    response = api_client.post(INFER, {"inputs": inputs}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["outputs"][0]["data"] == ["setosa"]
    assert "id" not in response.json()


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
            "3 columns",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2]}]},
            "needs 4 values",
        ),
        ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP99", "data": ROW}]}, "FP99"),
        ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT64", "data": ROW}]}, "INT64"),
        (
            {
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ["1", 2, 3, 4]}
                ]
            },
            "string",
        ),
        (
            {"inputs": [{"name": "f0", "shape": [1], "datatype": "FP64", "data": [1]}]},
            "Missing column 'f1'",
        ),
        ({"inputs": []}, "non-empty"),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 4],
                        "datatype": "FP64",
                        "parameters": {"binary_data_size": 32},
                    }
                ]
            },
            "binary",
        ),
        (
            {
                "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}],
                "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
            },
            "binary",
        ),
        (
            {
                "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}],
                "outputs": [{"name": "explain"}],
            },
            "outputs[0]",
        ),
    ],
)
def test_infer_errors_use_v2_shape(api_client, iris, body, needle):
    response = api_client.post(INFER, body, format="json")

    assert response.status_code == 400, response.content
    assert needle in response.json()["error"]


def test_unknown_model_is_404_and_infer_needs_token(api_client, anon_client, iris):
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}

    missing = api_client.post("/v2/models/nope/infer", body, format="json")

    assert missing.status_code == 404
    assert "nope" in missing.json()["error"]
    assert anon_client.post(INFER, body, format="json").status_code == 401
