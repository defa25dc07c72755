"""As-of scoring: an entity file + event_timestamp, features joined point in time."""

import io

import pandas as pd
import pytest

from features.models import FeatureService
from jobs.models import Job
from tests.batch.conftest import FEATURES
from tests.batch.helpers import read_output, wait_finished

pytestmark = pytest.mark.django_db(transaction=True)


def csv_upload(frame: pd.DataFrame, name: str) -> io.BytesIO:
    stream = io.BytesIO(frame.to_csv(index=False).encode())
    stream.name = name
    return stream


@pytest.fixture
def churn_with_features(api_client, feature_editor, churn):
    """churn's inputs are features of group 'stats', known from the time they happened."""
    assert (
        api_client.post(
            "/api/v1/features/entities/",
            {"name": "customer", "join_keys": ["customer_id"]},
            format="json",
        ).status_code
        == 201
    )
    group = api_client.post(
        "/api/v1/features/groups/",
        {
            "name": "stats",
            "entity": "customer",
            "features": [{"name": name, "dtype": "float64"} for name in FEATURES],
            "ttl_seconds": 30 * 86400,
            "availability": {"column": "available_at"},
            "tags": {},
            "tasks": ["classification"],
        },
        format="json",
    )
    assert group.status_code == 201, group.content
    history = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 2],
            "event_timestamp": [
                "2026-01-01T00:00:00Z",
                "2026-02-01T00:00:00Z",
                "2026-01-01T00:00:00Z",
                "2026-02-01T00:00:00Z",
            ],
            "age": [0.1, 0.9, -1.0, -0.2],
            "income": [0.5, -1.5, 2.0, 0.3],
            "tenure": [0.0, 0.2, 0.4, 0.6],
            "score": [1.0, -1.0, 0.5, -0.5],
        }
    )
    history["available_at"] = history["event_timestamp"]
    ingested = api_client.post(
        "/api/v1/features/groups/stats/ingest",
        {"file": csv_upload(history, "stats.csv")},
        format="multipart",
    )
    assert ingested.status_code in (201, 202), ingested.content
    service = api_client.post(
        "/api/v1/features/services/",
        {"name": "churn-features", "features": [f"stats:{name}" for name in FEATURES]},
        format="json",
    )
    assert service.status_code == 201, service.content
    churn.feature_service = FeatureService.objects.get(name="churn-features")
    churn.save(update_fields=["feature_service"])
    return history


def test_as_of_scoring_joins_the_features_known_at_each_time(
    celery_worker, api_client, churn, churn_with_features, classifier, settings
):
    # given entity rows asking about each customer before and after the February values
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 2
    entities = pd.DataFrame(
        {
            "customer_id": [1, 2, 1, 2],
            "event_timestamp": [
                "2026-01-15T00:00:00Z",
                "2026-01-20T00:00:00Z",
                "2026-02-15T00:00:00Z",
                "2026-02-02T00:00:00Z",
            ],
        }
    )

    response = api_client.post(
        "/api/v1/jobs/",
        {
            "model": "churn",
            "input": csv_upload(entities, "entities.csv"),
            "as_of": "true",
            "id_columns": "customer_id",
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    job = wait_finished(response.json()["id"])

    # then each row was scored with the values known at its time, never later ones
    assert job.status == Job.Status.SUCCEEDED, job.error
    history = churn_with_features.set_index(["customer_id", "event_timestamp"])
    known = pd.DataFrame(
        [
            history.loc[(1, "2026-01-01T00:00:00Z"), FEATURES],
            history.loc[(2, "2026-01-01T00:00:00Z"), FEATURES],
            history.loc[(1, "2026-02-01T00:00:00Z"), FEATURES],
            history.loc[(2, "2026-02-01T00:00:00Z"), FEATURES],
        ]
    ).astype(float)
    output = read_output(api_client, job.pk)
    assert output["customer_id"].astype(int).tolist() == [1, 2, 1, 2]
    assert output["prediction"].tolist() == classifier.predict(known).tolist()


def test_as_of_needs_a_version_with_a_feature_service(api_client, churn):
    entities = pd.DataFrame({"customer_id": [1], "event_timestamp": ["2026-01-15T00:00:00Z"]})
    response = api_client.post(
        "/api/v1/jobs/",
        {"model": "churn", "input": csv_upload(entities, "e.csv"), "as_of": "true"},
        format="multipart",
    )
    assert response.status_code == 400
    assert "feature service" in response.json()["detail"]
    assert not Job.objects.exists()


def test_as_of_entity_file_without_event_timestamp_is_refused(
    api_client, churn, churn_with_features
):
    entities = pd.DataFrame({"customer_id": [1]})
    response = api_client.post(
        "/api/v1/jobs/",
        {"model": "churn", "input": csv_upload(entities, "e.csv"), "as_of": "true"},
        format="multipart",
    )
    assert response.status_code == 400
    assert "event_timestamp" in response.json()["detail"]
    assert not Job.objects.filter(kind="batch_scoring").exists()
