"""An evaluation dataset built point in time from a feature service and an entity file (an
upload, or a file the team holds in its batch inputs area)."""

import io
from typing import Any

import pandas as pd
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from tests.batch.helpers import wait_finished
from tests.conftest import client_for, team_member
from tests.rollout.conftest import FEATURES, version_of


@pytest.fixture
def client(db: Any, django_user_model: Any, team: Any, good_classifier: Any) -> Any:
    """A member of `data` who may edit models and the feature catalog, churn v1, and a feature
    service serving its three inputs from a group with two snapshots per customer."""
    member = team_member(django_user_model, "ana", team, apps=("registry", "features"))
    api = client_for(member)
    version_of(good_classifier, "churn")
    assert (
        api.post(
            "/api/v1/features/entities/",
            {"name": "customer", "join_keys": ["customer_id"]},
            format="json",
        ).status_code
        == 201
    )
    group = {
        "name": "stats",
        "entity": "customer",
        "features": [{"name": name, "dtype": "float64"} for name in FEATURES],
        "ttl_seconds": 30 * 86400,
        "tags": {},
        "tasks": [],
    }
    assert api.post("/api/v1/features/groups/", group, format="json").status_code == 201
    rows = [
        {
            "customer_id": c,
            "event_timestamp": f"2025-0{m}-01T00:00:00Z",
            "age": c * 10 + m,
            "income": -c,
            "tenure": m,
        }
        for c in (1, 2, 3)
        for m in (1, 3)
    ]
    stream = io.BytesIO(pd.DataFrame(rows).to_csv(index=False).encode())
    stream.name = "stats.csv"
    ingested = api.post(
        "/api/v1/features/groups/stats/ingest", {"file": stream}, format="multipart"
    )
    assert ingested.status_code == 201, ingested.content
    created = api.post(
        "/api/v1/features/services/",
        {"name": "churn-inputs", "features": [f"stats:{name}" for name in FEATURES]},
        format="json",
    )
    assert created.status_code == 201, created.content
    return api


ENTITIES = pd.DataFrame(
    {
        "customer_id": [1, 2, 3, 1],
        "event_timestamp": ["2025-02-01T00:00:00Z"] * 3 + ["2025-04-01T00:00:00Z"],
        "churned": ["yes", "no", "no", "yes"],
    }
)


def test_point_in_time_dataset_from_an_uploaded_entity_file(client: Any) -> None:
    stream = io.BytesIO(ENTITIES.to_csv(index=False).encode())
    stream.name = "entities.csv"
    response = client.post(
        "/api/v1/models/churn/evaluation-datasets/",
        {"file": stream, "feature_service": "churn-inputs", "label_column": "churned"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source"] == "feature_service"
    assert body["feature_service"] == "churn-inputs"
    assert body["rows"] == 4
    assert body["status"] == "ready"
    for name in [*FEATURES, "churned", "customer_id", "event_timestamp"]:
        assert name in body["columns"]


def test_entity_file_by_reference_in_the_team_area(client: Any) -> None:
    default_storage.save(
        "batch-inputs/data/eval/entities.csv", ContentFile(ENTITIES.to_csv(index=False).encode())
    )
    body = {"feature_service": "churn-inputs", "label_column": "churned"}
    url = "/api/v1/models/churn/evaluation-datasets/"
    made = client.post(
        url, {**body, "entity_file": "batch-inputs/data/eval/entities.csv"}, format="json"
    )
    assert made.status_code == 201, made.content
    assert made.json()["rows"] == 4
    outside = client.post(url, {**body, "entity_file": "batch-inputs/data/../x.csv"}, format="json")
    assert outside.status_code == 400
    assert "batch-inputs/data/" in outside.json()["detail"]
    missing = client.post(url, {**body, "entity_file": "batch-inputs/data/none.csv"}, format="json")
    assert missing.status_code == 404
    unknown = client.post(
        url,
        {**body, "feature_service": "nope", "entity_file": "batch-inputs/data/eval/entities.csv"},
        format="json",
    )
    assert unknown.status_code == 400
    no_label = client.post(
        url,
        {**body, "label_column": "label", "entity_file": "batch-inputs/data/eval/entities.csv"},
        format="json",
    )
    assert no_label.status_code == 400
    assert "label" in no_label.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_large_entity_file_is_built_as_a_job(
    celery_worker: Any, client: Any, settings: Any
) -> None:
    settings.MLPLATFORM_INLINE_TRAINING_SET_ROWS = 2
    stream = io.BytesIO(ENTITIES.to_csv(index=False).encode())
    stream.name = "entities.csv"
    response = client.post(
        "/api/v1/models/churn/evaluation-datasets/",
        {"file": stream, "feature_service": "churn-inputs", "label_column": "churned"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "building"
    assert body["job"]
    job = wait_finished(body["job"], timeout=60)
    assert job.status == "succeeded", job.error
    built = client.get(f"/api/v1/models/churn/evaluation-datasets/{body['id']}/").json()
    assert built["status"] == "ready"
    assert built["rows"] == 4
