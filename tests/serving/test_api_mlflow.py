"""MLflow scoring protocol: /mlflow/models/{name}[/versions/{n}]/invocations, ping, health."""

import io
import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlplatform.errors import ApplicationError
from serving.codecs import mlflow

pytestmark = pytest.mark.django_db

ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}
URL = "/mlflow/models/iris/invocations"
PARQUET = "application/vnd.apache.parquet"


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
    ("body", "code", "needle"),
    [
        ({"dataframe_records": [ROW], "instances": [ROW]}, "BAD_REQUEST", "exactly one"),
        ({"columns": []}, "BAD_REQUEST", "exactly one"),
        (
            {"dataframe_split": {"columns": ["f0"], "data": [[1]]}},
            "INVALID_PARAMETER_VALUE",  # MLflow's schema enforcement: "missing inputs"
            "Missing column 'f1'",
        ),
        (
            {"dataframe_split": {"columns": ["f0", "f1"], "data": [[1, 2], [3]]}},
            "BAD_REQUEST",
            "row 1",
        ),
        ({"dataframe_split": {"columns": ["f0"], "rows": [[1]]}}, "BAD_REQUEST", "takes 'data'"),
        ({"instances": [[1, 2, 3]]}, "BAD_REQUEST", "expected 4"),
        ({"dataframe_records": [{**ROW, "f0": "5.1"}]}, "BAD_REQUEST", "numeric strings"),
        (
            {"dataframe_records": [ROW], "params": {"predict_method": "x"}},
            "BAD_REQUEST",
            "predict_method",
        ),
    ],
)
def test_errors_use_mlflow_shape(api_client, iris, body, code, needle):
    response = api_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["error_code"] == code
    assert needle in response.json()["message"]


def test_columns_the_model_does_not_take_are_ignored(api_client, iris):
    records = {"dataframe_records": [{"id": 7, **ROW}]}
    columns = {"inputs": {"id": [7], **{name: [value] for name, value in ROW.items()}}}
    csv_with_index = ",f0,f1,f2,f3\n0,5.1,3.5,1.4,0.2\n"

    answers = [
        api_client.post(URL, records, format="json"),
        api_client.post(URL, columns, format="json"),
        api_client.post(URL, {**records, "unknown": 1}, format="json"),
        api_client.post(URL, csv_with_index, content_type="text/csv"),
    ]

    for response in answers:
        assert response.status_code == 200, response.content
        assert response.json() == {"predictions": ["setosa"]}


def test_parquet_body(api_client, iris):
    frame = pd.DataFrame([ROW, {**ROW, "f2": 5.2, "f3": 2.3}]).assign(id=["a", "b"])

    response = api_client.post(URL, frame.to_parquet(), content_type=PARQUET)

    assert response.status_code == 200, response.content
    assert response.json() == {"predictions": ["setosa", "virginica"]}
    assert response["X-Model-Version"] == "1"


def _frame(**columns: list[Any]) -> pd.DataFrame:
    """ROW repeated to the length of the given columns, with those columns replaced."""
    n_rows = len(next(iter(columns.values())))
    return pd.DataFrame({**{name: [value] * n_rows for name, value in ROW.items()}, **columns})


@pytest.mark.parametrize(
    ("frame", "status", "code", "needle"),
    [
        (_frame(f1=[[1.0]]), 400, "INVALID_PARAMETER_VALUE", "Parquet type"),
        (_frame(f1=["x"]), 400, "INVALID_PARAMETER_VALUE", "'f1', row 0"),
        (_frame(f1=[1.0, None]), 400, "BAD_REQUEST", "row 1"),
        (_frame(f1=[None]), 400, "BAD_REQUEST", "null"),
        (_frame(f1=[True]), 400, "INVALID_PARAMETER_VALUE", "booleans"),
        (pd.DataFrame([ROW]).drop(columns="f1"), 400, "INVALID_PARAMETER_VALUE", "'f1'"),
        (pd.DataFrame([ROW] * 6), 400, "BAD_REQUEST", "rows exceed"),
    ],
)
def test_parquet_errors(api_client, iris, settings, frame, status, code, needle):
    settings.MLPLATFORM_MAX_BATCH_ROWS = 5

    response = api_client.post(URL, frame.to_parquet(), content_type=PARQUET)

    assert response.status_code == status, response.content
    assert response.json()["error_code"] == code
    assert needle in response.json()["message"]


def test_parquet_is_bounded_by_the_body_cap_once_decoded(api_client, iris, settings):
    # Given a Parquet body small on the wire whose columns decode to more than the cap
    frame = pd.DataFrame({name: [1.0] * 5000 for name in ROW})
    body = frame.to_parquet(compression="zstd", row_group_size=5000)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 20_000
    assert len(body) < 20_000

    response = api_client.post(URL, body, content_type=PARQUET)

    assert response.status_code == 413
    assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_repeated_text_in_parquet_is_bounded_once_decoded(api_client, make_version, settings):
    # Given a dictionary-encoded string column: a few kilobytes standing for megabytes of text
    make_version("colors")
    frame = pd.DataFrame({"x": [0.5] * 5000, "color": ["red" * 1000] * 5000})
    body = frame.to_parquet(compression="zstd")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000_000
    assert len(body) < 100_000

    response = api_client.post("/mlflow/models/colors/invocations", body, content_type=PARQUET)

    assert response.status_code == 413
    assert "decoded Parquet" in response.json()["message"]


def test_a_corrupted_parquet_body_is_a_4xx_or_predicts(iris):
    # Given a valid Parquet body with bytes overwritten at random (seeded: the same every run)
    body = pd.DataFrame([ROW] * 3).assign(id=["a", "b", "c"]).to_parquet()
    rng = np.random.default_rng(13)
    outcomes: list[int | str] = []

    for _ in range(400):
        corrupted = bytearray(body)
        for position in rng.integers(len(corrupted), size=rng.integers(1, 5)):
            corrupted[position] = int(rng.integers(256))
        try:
            decoded = mlflow.parquet_request(bytes(corrupted), iris.signature, keep=())
            outcomes.append(type(decoded).__name__)
        except ApplicationError as exc:  # the API answers it with this status
            outcomes.append(exc.status_code)

    assert {outcome for outcome in outcomes if isinstance(outcome, int)} == {400}


def test_a_parquet_column_named_twice_is_400(api_client, iris):
    table = pa.table({"f0": [5.1], "f1": [3.5], "f2": [1.4], "f3": [0.2]})
    twice = pa.Table.from_arrays([*table.columns, table.column("f3")], [*table.column_names, "f3"])
    sink = io.BytesIO()
    pq.write_table(twice, sink)

    response = api_client.post(URL, sink.getvalue(), content_type=PARQUET)

    assert response.status_code == 400
    assert "more than once" in response.json()["message"]


def test_garbage_parquet_is_400(api_client, iris):
    response = api_client.post(URL, b"PAR1 not really", content_type=PARQUET)

    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=latin-1", "application/json; foo=bar"]
)
def test_content_type_parameters_mlflow_refuses_are_415(api_client, iris, content_type):
    response = api_client.post(URL, {"dataframe_records": [ROW]}, content_type=content_type)

    assert response.status_code == 415


def test_utf8_charset_is_accepted(api_client, iris):
    response = api_client.post(
        URL,
        json.dumps({"dataframe_records": [ROW]}),
        content_type="application/json; charset=UTF-8",
    )

    assert response.status_code == 200, response.content


def test_version_answers_the_mirrored_mlflow_release_and_names_the_model_version(
    api_client, anon_client, make_version, iris
):
    make_version("iris", number=2)

    latest = api_client.get("/mlflow/models/iris/version")
    first = api_client.get("/mlflow/models/iris/versions/1/version")

    assert latest.status_code == first.status_code == 200
    assert latest.content.decode() == first.content.decode() == mlflow.MLFLOW_VERSION
    assert (latest["X-Model-Version"], first["X-Model-Version"]) == ("2", "1")
    assert api_client.get("/mlflow/models/nope/version").status_code == 404
    assert anon_client.get("/mlflow/models/iris/version").status_code == 401


def test_every_mlflow_answer_names_the_version(api_client, iris):
    predicted = api_client.post(URL, {"dataframe_records": [ROW]}, format="json")
    refused = api_client.post(URL, {"dataframe_records": [{"f0": 1}]}, format="json")
    pinged = api_client.get("/mlflow/models/iris/ping")

    assert [r["X-Model-Version"] for r in (predicted, refused, pinged)] == ["1", "1", "1"]


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
