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
            "Inference-Header-Content-Length",
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


def test_infer_without_outputs_answers_every_output(api_client, iris, make_version):
    # Given requests that name no output, to a classifier and to a regressor
    make_version("reg")
    row = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
    reg = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [0.1, 0.2, 0.3]}]}

    # When they are sent
    classifier = api_client.post(INFER, row, format="json").json()
    regressor = api_client.post("/v2/models/reg/infer", reg, format="json").json()

    # Then every output the model has is answered, as the protocol says
    assert [o["name"] for o in classifier["outputs"]] == ["predict", "predict_proba"]
    assert [o["name"] for o in regressor["outputs"]] == ["predict"]


def test_every_answer_that_resolved_a_version_names_it(api_client, iris, make_version):
    # Given version 2 of iris, answering by default
    make_version("iris", number=2)
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
    bad = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2]}]}

    # When each protocol's routes are called, successfully or with a bad body
    answers = [
        api_client.post(INFER, body, format="json"),
        api_client.post(INFER, bad, format="json"),
        api_client.get("/v2/models/iris"),
        api_client.get("/v2/models/iris/ready"),
        api_client.get("/v2/models/iris/config"),
        api_client.post("/v1/models/iris:predict", {"instances": [ROW]}, format="json"),
        api_client.get("/v1/models/iris"),
        api_client.post(
            "/api/v1/models/iris/predict",
            {"instances": [dict(zip(["f0", "f1", "f2", "f3"], ROW, strict=True))]},
            format="json",
        ),
        api_client.post(
            "/mlflow/models/iris/invocations",
            {"dataframe_split": {"columns": ["f0", "f1", "f2", "f3"], "data": [ROW]}},
            format="json",
        ),
        api_client.get("/mlflow/models/iris/ping"),
    ]

    # Then each names version 2, and a version asked by number is that one
    assert [a["X-Model-Version"] for a in answers] == ["2"] * len(answers)
    assert [a.status_code for a in answers] == [200, 400, *[200] * 8]
    assert api_client.get("/v2/models/iris/versions/1/ready")["X-Model-Version"] == "1"
    # And an unknown model names none
    assert "X-Model-Version" not in api_client.get("/v2/models/nope/ready")


def test_model_config_in_tritons_shape(api_client, iris):
    config = api_client.get("/v2/models/iris/versions/1/config").json()

    assert config["name"] == "iris"
    assert config["max_batch_size"] == 0
    assert config["input"][0] == {"name": "f0", "data_type": "TYPE_FP64", "dims": [-1]}
    assert config["output"] == [
        {"name": "predict", "data_type": "TYPE_STRING", "dims": [-1]},
        {"name": "predict_proba", "data_type": "TYPE_FP64", "dims": [-1, 3]},
    ]


def test_repository_index_lists_only_models_the_caller_may_read(
    api_client, iris, make_version, django_user_model
):
    # Given a model of another team, and a model whose only version is not ready
    from registry.models import ModelVersion
    from tests.factories import TeamFactory

    other = make_version("reg", name="secret")
    other.model.owner = TeamFactory.create(name="other-team")
    other.model.save()
    pending = make_version("km", name="pending")
    ModelVersion.objects.filter(pk=pending.pk).update(status=ModelVersion.Status.PENDING)

    # When the repository index is read, all of it and the ready models only
    index = api_client.post("/v2/repository/index", {}, format="json").json()
    ready = api_client.post("/v2/repository/index", {"ready": True}, format="json").json()

    # Then the other team's model is not named; the pending one is UNAVAILABLE
    assert index == [
        {"name": "iris", "version": "1", "state": "READY", "reason": ""},
        {"name": "pending", "version": "", "state": "UNAVAILABLE", "reason": "no ready version"},
    ]
    assert [entry["name"] for entry in ready] == ["iris"]


def test_statistics_count_this_processs_requests(api_client, iris):
    # Given the statistics of iris before two predictions and a refused request
    def iris_stats():
        body = api_client.get("/v2/models/iris/stats").json()
        return body["model_stats"][0] if body["model_stats"] else None

    before = iris_stats() or {"execution_count": 0, "inference_count": 0}
    good = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": ROW * 2}]}
    bad = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2]}]}
    api_client.post(INFER, good, format="json")
    api_client.post(INFER, good, format="json")
    api_client.post(INFER, bad, format="json")

    # When they are read again
    after = iris_stats()

    # Then the successes, the rows and the failure are counted
    assert after["name"] == "iris"
    assert after["version"] == "1"
    assert after["execution_count"] - before["execution_count"] == 2
    assert after["inference_count"] - before["inference_count"] == 4
    assert after["inference_stats"]["fail"]["count"] >= 1
    assert after["inference_stats"]["success"]["ns"] > 0
    every = api_client.get("/v2/models/stats").json()["model_stats"]
    assert "iris" in {item["name"] for item in every}


@pytest.mark.parametrize(
    ("method", "path", "status", "key"),
    [
        ("get", "/v2/nope", 404, "error"),
        ("post", "/v2/models/iris/explain", 404, "error"),
        ("get", "/v2/models/iris/versions/1/nope", 404, "error"),
        ("get", "/v1/models/iris/metadata", 404, "error"),
        ("delete", "/v1/anything", 404, "error"),
        ("get", "/mlflow/version2", 404, "error_code"),
        ("get", "/mlflow/models/iris/nope", 404, "error_code"),
        ("get", "/v2/models/iris/infer", 405, "error"),
        ("delete", "/v2/models/iris", 405, "error"),
        ("get", "/v1/models/iris:predict", 405, "error"),
        ("put", "/mlflow/models/iris/invocations", 405, "error_code"),
    ],
)
def test_unknown_paths_and_methods_answer_json(api_client, iris, method, path, status, key):
    response = getattr(api_client, method)(path)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert key in response.json()
    if key == "error_code":
        assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_kserve_v1_readiness_list_and_predictions(api_client, iris, make_version):
    # Given iris, and a model whose only version is not ready
    from registry.models import ModelVersion

    pending = make_version("km", name="pending")
    ModelVersion.objects.filter(pk=pending.pk).update(status=ModelVersion.Status.PENDING)
    record = dict(zip(["f0", "f1", "f2", "f3"], ROW, strict=True))

    # When the V1 routes are called
    ready = api_client.get("/v1/models/iris")
    not_ready = api_client.get("/v1/models/pending")
    unknown = api_client.get("/v1/models/nope")
    listed = api_client.get("/v1/models")
    predict = "/v1/models/iris:predict"
    rows = api_client.post(predict, {"instances": [ROW, ROW]}, format="json")
    records = api_client.post(predict, {"instances": [record]}, format="json")
    missing = api_client.post(predict, {"instances": [{"f0": 1.0}]}, format="json")
    empty = api_client.post(predict, {"instances": []}, format="json")

    # Then they answer as KServe's model server does
    assert ready.json() == {"name": "iris", "ready": True}
    assert (not_ready.status_code, not_ready.json()) == (503, {"name": "pending", "ready": False})
    assert unknown.status_code == 404
    assert "nope" in unknown.json()["error"]
    assert listed.json() == {"models": ["iris", "pending"]}
    assert rows.json() == {"predictions": ["setosa", "setosa"]}
    assert records.json() == {"predictions": ["setosa"]}
    assert missing.status_code == 400
    assert missing.json()["error"] == "Missing column 'f1'."
    assert empty.status_code == 400
    assert "empty" in empty.json()["error"]
