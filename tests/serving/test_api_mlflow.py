"""MLflow scoring protocol: /mlflow/models/{name}[/versions/{n}]/invocations, ping, health."""

import pytest

pytestmark = pytest.mark.django_db

ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}
URL = "/mlflow/models/iris/invocations"


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["f3", "f2", "f1", "f0"], "data": [[0.2, 1.4, 3.5, 5.1]]}},
        {"dataframe_records": [ROW]},
        {"instances": [ROW]},
        {"instances": [[5.1, 3.5, 1.4, 0.2]]},
        {"inputs": {"f0": [5.1], "f1": [3.5], "f2": [1.4], "f3": [0.2]}},
        {"inputs": [[5.1, 3.5, 1.4, 0.2]], "params": {}},
    ],
)
def test_every_json_shape_predicts(api_client, iris, body):
    response = api_client.post(URL, body, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"predictions": ["setosa"]}


def test_params_predict_method_returns_probabilities(api_client, iris):
    response = api_client.post(
        "/mlflow/models/iris/versions/1/invocations",
        {"dataframe_records": [ROW], "params": {"predict_method": "predict_proba"}},
        format="json",
    )

    assert response.status_code == 200
    assert len(response.json()["predictions"][0]) == 3


def test_csv_body(api_client, iris):
    body = "f0,f1,f2,f3\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"

    response = api_client.post(URL, body, content_type="text/csv")

    assert response.status_code == 200, response.content
    assert response.json()["predictions"] == ["setosa", "virginica"]


def test_csv_with_text_in_a_number_column_is_400(api_client, iris):
    response = api_client.post(URL, "f0,f1,f2,f3\n5.1,x,1.4,0.2\n", content_type="text/csv")

    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert "'f1', row 0" in response.json()["message"]


def test_other_content_type_is_415(api_client, iris):
    response = api_client.post(URL, "<xml/>", content_type="application/xml")

    assert response.status_code == 415
    assert "application/xml" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"dataframe_records": [ROW], "instances": [ROW]}, "exactly one"),
        ({"columns": []}, "exactly one"),
        ({"dataframe_split": {"columns": ["f0"], "data": [[1]]}}, "Missing column 'f1'"),
        ({"dataframe_split": {"columns": ["f0", "f1"], "data": [[1, 2], [3]]}}, "row 1"),
        ({"instances": [[1, 2, 3]]}, "expected 4"),
        ({"dataframe_records": [{**ROW, "f0": "5.1"}]}, "numeric strings"),
        ({"dataframe_records": [ROW], "params": {"predict_method": "x"}}, "predict_method"),
    ],
)
def test_errors_use_mlflow_shape(api_client, iris, body, needle):
    response = api_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert needle in response.json()["message"]


def test_unknown_model_and_no_token(api_client, anon_client, iris):
    missing = api_client.post(
        "/mlflow/models/nope/invocations", {"instances": [ROW]}, format="json"
    )
    anonymous = anon_client.post(URL, {"instances": [ROW]}, format="json")

    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert anonymous.status_code == 401
    assert anonymous.json()["error_code"] == "UNAUTHENTICATED"


def test_ping_and_health_need_a_token_and_then_answer(anon_client, api_client, iris):
    for path in ("ping", "health", "versions/1/ping"):
        assert api_client.get(f"/mlflow/models/iris/{path}").status_code == 200, path
    assert api_client.get("/mlflow/models/nope/ping").status_code == 404
    # without a token nobody learns which models exist: the same 401 for both
    assert anon_client.get("/mlflow/models/iris/ping").status_code == 401
    assert anon_client.get("/mlflow/models/nope/ping").status_code == 401
