"""A client generated from the OpenAPI schema by `openapi-python-client`, as a user would
generate one, calling every serving route against the live server: its typed request models
build the bodies, its typed response models parse the answers and the errors."""

import importlib
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiYamlRenderer

from tests.conftest import api_key_for
from tests.features.conftest import make_group
from tests.serving.conftest import alias_set

pytestmark = pytest.mark.django_db(transaction=True)

ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
PACKAGE = "mlplatform_client"
# What docs/serving.md tells users to pass: the generator has no body type for CSV or Parquet, so
# both are mapped to raw bytes. (Its code for a text body is broken in 0.29 — it reads `.payload`
# of a str — so a generated client sends JSON or Parquet; CSV is for plain HTTP clients.)
CONFIG = """\
content_type_overrides:
  text/csv: application/octet-stream
  application/vnd.apache.parquet: application/octet-stream
post_hooks: []
"""


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The client package, generated once per session from the schema `/api/schema/` serves;
    any generator warning fails it."""
    root = tmp_path_factory.mktemp("openapi-client")
    schema = SchemaGenerator().get_schema(request=None, public=True)
    (root / "schema.yaml").write_bytes(OpenApiYamlRenderer().render(schema))
    (root / "config.yaml").write_text(CONFIG)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(root / "schema.yaml"),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(root / "config.yaml"),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Warning" not in output, output
    sys.path.insert(0, str(root))
    return importlib.import_module(PACKAGE)


def module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.fixture
def client(generated: ModuleType, live_server: Any, user: Any) -> Any:
    return generated.AuthenticatedClient(
        base_url=live_server.url, token=api_key_for(user), prefix="Token"
    )


def test_native_predict_on_its_three_routes(client, iris):
    alias_set(iris)
    models = module("models")
    body = models.NativePredictRequest.from_dict({"instances": [ROW], "return": ["predict_proba"]})
    # When the three route forms are called through the generated functions
    answers = [
        module("api.predict.api_v1_models_predict_create").sync("iris", client=client, body=body),
        module("api.predict.api_v1_models_versions_predict_create").sync(
            "iris", 1, client=client, body=body
        ),
        module("api.predict.api_v1_models_aliases_predict_create").sync(
            "iris", "production", client=client, body=body
        ),
    ]
    # Then each answer parses into the typed response with the version and probabilities
    for answer in answers:
        assert isinstance(answer, models.NativePredictResponse)
        assert (answer.model, answer.version) == ("iris", 1)
        assert answer.classes == ["setosa", "versicolor", "virginica"]
        assert len(answer.probabilities[0]) == 3
        assert max(answer.probabilities[0]) == answer.probabilities[0][0]


def test_native_predict_columns_and_an_error(client, iris):
    models = module("models")
    predict = module("api.predict.api_v1_models_predict_create")
    columns = models.NativePredictRequest.from_dict(
        {"inputs": {key: [value] for key, value in ROW.items()}}
    )
    bad = models.NativePredictRequest.from_dict({"instances": [{**ROW, "f2": "x"}]})

    answer = predict.sync("iris", client=client, body=columns)
    error = predict.sync_detailed("iris", client=client, body=bad)

    assert answer.predictions == ["setosa"]
    assert error.status_code == 400
    assert isinstance(error.parsed, models.PlatformError)
    assert error.parsed.field == "f2"
    assert error.parsed.row == 0


def test_mlflow_invocations_and_ping(generated, client, iris):
    models = module("models")
    invocations = module("api.mlflow.mlflow_models_invocations_create")
    split = models.MlflowDataframeSplitInputRequest.from_dict(
        {"dataframe_split": {"columns": list(ROW), "data": ROWS}}
    )
    records = models.MlflowDataframeRecordsInputRequest.from_dict(
        {"dataframe_records": [ROW], "params": {"predict_method": "predict"}}
    )

    by_split = invocations.sync("iris", client=client, body=split)
    by_records = invocations.sync("iris", client=client, body=records)
    parquet = io.BytesIO()
    pd.DataFrame([ROW]).to_parquet(parquet)
    by_parquet = invocations.sync(
        "iris", client=client, body=generated.types.File(payload=parquet.getvalue())
    )
    ping = module("api.mlflow.mlflow_models_ping_retrieve").sync("iris", client=client)
    release = module("api.mlflow.mlflow_models_version_retrieve").sync("iris", client=client)

    assert isinstance(by_split, models.MlflowPredictions)
    assert by_split.predictions == ["setosa", "virginica"]
    assert by_records.predictions == ["setosa"]
    assert by_parquet.predictions == ["setosa"]
    assert isinstance(ping, models.MlflowPing)
    assert (ping.model, ping.version) == ("iris", 1)
    assert release.count(".") == 2


def test_mlflow_error_parses_into_mlflows_error(client, iris):
    models = module("models")
    invocations = module("api.mlflow.mlflow_models_invocations_create")
    body = models.MlflowInstancesInputRequest.from_dict({"instances": [[1.0, 2.0]]})

    answer = invocations.sync_detailed("iris", client=client, body=body)

    assert answer.status_code == 400
    assert isinstance(answer.parsed, models.MlflowError)
    assert answer.parsed.error_code in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
    assert "2 values" in answer.parsed.message


def test_open_inference_infer_metadata_and_ready(client, iris):
    models = module("models")
    infer = module("api.open_inference.v2_models_infer_create")
    body = models.InferRequest.from_dict(
        {
            "id": "req-1",
            "inputs": [
                {"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": ROWS},
            ],
            "outputs": [{"name": "predict"}],
        }
    )

    answer = infer.sync("iris", client=client, body=body)
    metadata = module("api.open_inference.v2_models_retrieve").sync("iris", client=client)
    ready = module("api.open_inference.v2_models_ready_retrieve").sync("iris", client=client)
    live = module("api.open_inference.v2_health_live_retrieve").sync(client=client)

    assert isinstance(answer, models.InferResponse)
    assert (answer.model_name, answer.model_version, answer.id) == ("iris", "1", "req-1")
    assert [output.name for output in answer.outputs] == ["predict"]
    assert answer.outputs[0].data == ["setosa", "virginica"]
    assert answer.outputs[0].shape == [2]
    assert isinstance(metadata, models.ModelMetadata)
    assert [tensor.name for tensor in metadata.inputs] == list(ROW)
    assert metadata.versions == ["1"]
    assert isinstance(ready, models.ModelReady)
    assert ready.ready is True
    assert live.live is True


def test_open_inference_error_parses_into_its_error(client, iris):
    models = module("models")
    infer = module("api.open_inference.v2_models_infer_create")
    body = models.InferRequest.from_dict(
        {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [1.0]}]}
    )

    answer = infer.sync_detailed("iris", client=client, body=body)
    unknown = module("api.open_inference.v2_models_ready_retrieve").sync_detailed(
        "nope", client=client
    )

    assert answer.status_code == 400
    assert isinstance(answer.parsed, models.OpenInferenceError)
    assert "needs 4 values" in answer.parsed.error
    assert unknown.status_code == 404
    assert isinstance(unknown.parsed, models.OpenInferenceError)


def test_kserve_v1_predict_and_ready(client, iris):
    models = module("models")
    body = models.V1PredictRequest.from_dict({"instances": ROWS})

    answer = module("api.kserve_v1.v1_models_predict").sync("iris", client=client, body=body)
    ready = module("api.kserve_v1.v1_models_retrieve").sync("iris", client=client)

    assert isinstance(answer, models.V1Predictions)
    assert answer.predictions == ["setosa", "virginica"]
    assert isinstance(ready, models.V1ModelReady)
    assert ready.ready is True


def test_feast_push_then_read(client, api_client, feature_editor):
    # Given a feature group of customers
    response = api_client.post(
        "/api/v1/features/entities/",
        {"name": "customer", "join_keys": ["customer_id"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    make_group(api_client, name="activity", features=[{"name": "clicks", "dtype": "int64"}])
    models = module("models")
    event = (datetime.now(tz=UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # When rows are pushed and read back through the generated client
    push = module("api.feast.push_create").sync_detailed(
        client=client,
        body=models.FeastPushRequest.from_dict(
            {
                "push_source_name": "activity",
                "df": {"customer_id": [1, 7], "event_timestamp": [event, event],
                       "clicks": [10, 70]},
            }
        ),
    )  # fmt: skip
    read = module("api.feast.get_online_features_create").sync(
        client=client,
        body=models.FeastOnlineFeaturesRequest.from_dict(
            {"features": ["activity:clicks"], "entities": {"customer_id": [1, 7, 9]}}
        ),
    )
    # Then the read parses into Feast's response shape with the pushed values
    assert push.status_code == 200, push.content
    assert isinstance(read, models.FeastOnlineFeaturesResponse)
    assert read.metadata.feature_names == ["customer_id", "clicks"]
    assert read.results[1].values == [10, 70, None]
    assert [str(status) for status in read.results[1].statuses] == [
        "PRESENT",
        "PRESENT",
        "NOT_FOUND",
    ]


def test_generated_client_sends_json_never_multipart(generated):
    # The predict functions build a JSON request, which is what the routes read.
    models = module("models")
    kwargs = module("api.predict.api_v1_models_predict_create")._get_kwargs(
        "iris", body=models.NativePredictRequest.from_dict({"instances": [ROW]})
    )
    assert kwargs["headers"]["Content-Type"] == "application/json"
    assert kwargs["json"] == {"instances": [ROW]}
    assert "files" not in kwargs
    assert Path(generated.__file__).parent.name == PACKAGE
