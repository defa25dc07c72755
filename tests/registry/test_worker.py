"""End to end through the real worker: upload with the API, poll until ready or rejected."""

import time
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from jobs.models import Job
from tests.registry.conftest import OsSystem, serialise, zip_bomb

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def _upload(client: APIClient, name: str, data: bytes, filename: str) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/models/{name}/versions/",
        {"artifact": SimpleUploadedFile(filename, data)},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def _wait(client: APIClient, name: str, number: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/models/{name}/versions/{number}/").json()
        if body["status"] != "pending":
            return body
        time.sleep(0.3)
    raise AssertionError(f"{name} v{number} still pending after {timeout}s")


@pytest.fixture
def admin_client(django_user_model: Any) -> APIClient:
    from tests.conftest import api_key_for

    admin = django_user_model.objects.create_superuser(username="root", password="pw-root-123")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(admin)}")
    assert client.post("/api/v1/models/", {"name": "churn"}, format="json").status_code == 201
    return client


def test_worker_validates_good_files_and_rejects_bad_ones_and_stays_healthy(
    celery_worker: Any,
    admin_client: APIClient,
    estimators: dict[str, Any],
    marker: Path,
    tmp_path: Path,
) -> None:
    # given an attack, a zip bomb, a truncated pickle and then a good model, uploaded in a row
    evil = serialise(OsSystem(marker), "joblib-gzip")
    truncated = serialise(estimators["random_forest"], "pickle-5")[:-40]
    uploads = [
        ("evil.joblib", evil),
        ("bomb.skops", zip_bomb()),
        ("cut.pkl", truncated),
        ("good.skops", serialise(estimators["pipeline"], "skops")),
    ]
    numbers = [_upload(admin_client, "churn", data, name)["version"] for name, data in uploads]
    assert numbers == [1, 2, 3, 4]

    # when the worker has processed them
    results = [_wait(admin_client, "churn", n) for n in numbers]

    # then the bad ones are rejected with a reason, the payload never ran, the good one is ready
    assert [r["status"] for r in results] == ["rejected", "rejected", "rejected", "ready"]
    assert "posix.system" in results[0]["status_message"]
    assert "zip bomb" in results[1]["status_message"]
    assert results[2]["status_message"]
    assert results[3]["signature"]["classes"] == ["no", "yes"]
    assert not marker.exists()
    jobs = Job.objects.filter(kind=Job.Kind.MODEL_VALIDATION).order_by("id")
    assert [j.status for j in jobs] == ["failed", "failed", "failed", "succeeded"]
    assert celery_worker.process.poll() is None


def test_alias_on_worker_validated_version_is_served_by_resolve(
    celery_worker: Any, admin_client: APIClient, estimators: dict[str, Any]
) -> None:
    from registry.selectors import version_resolve

    _upload(admin_client, "churn", serialise(estimators["linear"], "joblib-lz4"), "m.joblib")
    assert _wait(admin_client, "churn", 1)["status"] == "ready"

    response = admin_client.put(
        "/api/v1/models/churn/aliases/production/", {"version": 1}, format="json"
    )

    assert response.status_code == 200
    assert version_resolve(model_name="churn").version == 1
