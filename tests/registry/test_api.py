"""The registry REST API: models, versions, artifacts and aliases, with permissions."""

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from registry import services
from registry.models import AliasChange, ModelVersion, RegisteredModel
from tests.conftest import client_for
from tests.factories import ModelVersionFactory
from tests.registry.conftest import serialise, upload

pytestmark = pytest.mark.django_db


def bearer_client(user: Any) -> APIClient:
    return client_for(user, scheme="Bearer")


def artifact(data: bytes, name: str = "model.joblib") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


# --- models ---------------------------------------------------------------------------------------


def test_create_list_search_and_filter_models(api_client: APIClient) -> None:
    created = api_client.post(
        "/api/v1/models/",
        {"name": "churn", "description": "Who leaves", "tags": {"team": "risk"}},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["name"] == "churn"
    api_client.post("/api/v1/models/", {"name": "fraud"}, format="json")

    everything = api_client.get("/api/v1/models/").json()
    assert everything["count"] == 2
    assert {"count", "next", "previous", "results"} <= everything.keys()
    assert [m["name"] for m in api_client.get("/api/v1/models/?q=leaves").json()["results"]] == [
        "churn"
    ]
    assert api_client.get("/api/v1/models/?tag=team:risk").json()["count"] == 1
    assert api_client.get("/api/v1/models/?tag=team").json()["count"] == 1
    assert api_client.get("/api/v1/models/?tag=team:ops").json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Not a slug!"}, "name"),
        ({"name": "ok", "tags": "[1, 2]"}, "tags"),
        ({"name": "ok", "owner": "nobody"}, "owner"),
        ({}, "name"),
    ],
)
def test_invalid_model_is_400_naming_the_field(
    api_client: APIClient, body: dict[str, Any], field: str
) -> None:
    response = api_client.post("/api/v1/models/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert not RegisteredModel.objects.exists()


def test_duplicate_model_name_is_409(api_client: APIClient, open_model: RegisteredModel) -> None:
    response = api_client.post("/api/v1/models/", {"name": open_model.name}, format="json")

    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_unknown_model_is_404(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/models/nope/")

    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def test_patch_and_delete_need_the_owning_team(
    api_client: APIClient, member: Any, registered: RegisteredModel
) -> None:
    outsider = api_client.patch(
        f"/api/v1/models/{registered.name}/", {"description": "x"}, format="json"
    )
    assert outsider.status_code == 403

    team = bearer_client(member)
    patched = team.patch(
        f"/api/v1/models/{registered.name}/", {"description": "Churn v2"}, format="json"
    )
    assert patched.status_code == 200
    assert patched.json()["description"] == "Churn v2"
    assert api_client.delete(f"/api/v1/models/{registered.name}/").status_code == 403
    assert team.delete(f"/api/v1/models/{registered.name}/").status_code == 204
    assert not RegisteredModel.objects.filter(name=registered.name).exists()


# --- versions -------------------------------------------------------------------------------------


def test_unauthenticated_upload_is_401(
    anon_client: APIClient, registered: RegisteredModel, estimators: dict[str, Any]
) -> None:
    response = anon_client.post(
        f"/api/v1/models/{registered.name}/versions/",
        {"artifact": artifact(serialise(estimators["linear"], "joblib"))},
        format="multipart",
    )

    assert response.status_code == 401
    assert "detail" in response.json()
    assert not ModelVersion.objects.exists()


def test_upload_by_someone_outside_the_team_is_403(
    api_client: APIClient, registered: RegisteredModel, estimators: dict[str, Any]
) -> None:
    response = api_client.post(
        f"/api/v1/models/{registered.name}/versions/",
        {"artifact": artifact(serialise(estimators["linear"], "joblib"))},
        format="multipart",
    )

    assert response.status_code == 403
    assert "risk" in response.json()["detail"]
    assert not ModelVersion.objects.exists()


def test_upload_to_a_model_without_owner_is_for_admins_only(
    api_client: APIClient, user: Any, open_model: RegisteredModel, estimators: dict[str, Any]
) -> None:
    url = f"/api/v1/models/{open_model.name}/versions/"
    data = serialise(estimators["linear"], "joblib")
    assert user.has_perm("registry.add_modelversion")  # the permission alone is not enough
    refused = api_client.post(url, {"artifact": artifact(data)}, format="multipart")
    assert refused.status_code == 403
    assert "admin" in refused.json()["detail"]

    user.is_superuser = True
    user.save()
    response = api_client.post(url, {"artifact": artifact(data)}, format="multipart")
    assert response.status_code == 201


def test_team_member_upload_is_201_pending_with_sha256_and_job(
    member: Any, registered: RegisteredModel, estimators: dict[str, Any]
) -> None:
    data = serialise(estimators["linear"], "joblib")

    response = bearer_client(member).post(
        f"/api/v1/models/{registered.name}/versions/",
        {
            "artifact": artifact(data),
            "description": "first",
            "metrics": json.dumps({"r2": 0.9}),
            "tags": json.dumps({"dataset": "2025-03"}),
            "input_example": json.dumps([{"age": 1, "income": 2, "tenure": 3, "score": 4}]),
        },
        format="multipart",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"] == 1
    assert body["status"] == "pending"
    assert body["format"] == "joblib"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["metrics"] == {"r2": 0.9}
    assert body["uploaded_by"] == "bob"
    assert body["job"] is not None


def test_path_traversal_file_name_is_stored_under_the_server_path(
    member: Any, registered: RegisteredModel, estimators: dict[str, Any], settings: Any
) -> None:
    data = serialise(estimators["linear"], "joblib")

    response = bearer_client(member).post(
        f"/api/v1/models/{registered.name}/versions/",
        {"artifact": artifact(data, name="../../../../etc/cron.d/evil.joblib")},
        format="multipart",
    )

    assert response.status_code == 201
    version = ModelVersion.objects.get()
    sha = hashlib.sha256(data).hexdigest()
    assert re.fullmatch(rf"artifacts/{registered.pk}/{sha}(_\w+)?\.joblib", version.artifact.name)
    stored = Path(version.artifact.path).resolve()
    assert stored.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    assert "evil" not in str(stored)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"artifact": artifact(b"not a model at all", "m.joblib")}, "artifact", "not a pickle"),
        ({"artifact": artifact(b"", "m.joblib")}, "artifact", "empty"),
        ({"artifact": artifact(b"\x80\x04N.", "m.exe")}, "artifact", "extension"),
        ({"artifact": artifact(b"\x80\x04N.", "m.skops")}, "artifact", "zip"),
        ({}, "artifact", "No file"),
        ({"metrics": "{not json"}, "metrics", "JSON"),
        ({"metrics": json.dumps({"acc": "high"})}, "metrics", "number"),
        ({"tags": json.dumps([1, 2])}, "tags", "object"),
        ({"input_example": json.dumps([1, 2])}, "input_example", "records"),
        ({"input_example": '[{"age": NaN}]'}, "input_example", "NaN"),
    ],
)
def test_bad_upload_is_400_naming_the_field_and_stores_nothing(
    member: Any,
    registered: RegisteredModel,
    estimators: dict[str, Any],
    fields: dict[str, Any],
    field: str,
    message: str,
    settings: Any,
) -> None:
    body = {"artifact": artifact(serialise(estimators["linear"], "joblib")), **fields}
    if not fields:
        body = {}
    for value in body.values():
        if isinstance(value, SimpleUploadedFile):
            value.seek(0)  # parametrized files are module-level objects: rewind each time

    stored = Path(settings.MEDIA_ROOT) / "artifacts"
    files_before = set(stored.rglob("*"))

    response = bearer_client(member).post(
        f"/api/v1/models/{registered.name}/versions/", body, format="multipart"
    )

    assert response.status_code == 400, response.json()
    assert field in response.json()["detail"]
    assert message.lower() in response.json()["detail"].lower()
    assert not ModelVersion.objects.exists()
    assert set(stored.rglob("*")) == files_before


def test_too_large_artifact_is_400(
    member: Any, registered: RegisteredModel, estimators: dict[str, Any], settings: Any
) -> None:
    settings.MLPLATFORM_MAX_ARTIFACT_BYTES = 100

    response = bearer_client(member).post(
        f"/api/v1/models/{registered.name}/versions/",
        {"artifact": artifact(serialise(estimators["linear"], "joblib"))},
        format="multipart",
    )

    assert response.status_code == 400
    assert "MLPLATFORM_MAX_ARTIFACT_BYTES" in response.json()["detail"]


def test_oversized_request_is_413_before_the_body_is_read(
    member: Any, registered: RegisteredModel, settings: Any
) -> None:
    settings.MLPLATFORM_MAX_ARTIFACT_BYTES = 100

    response = bearer_client(member).post(
        f"/api/v1/models/{registered.name}/versions/",
        {"artifact": artifact(b"\x80\x04" + b"\0" * (2 * 1024 * 1024))},
        format="multipart",
    )

    assert response.status_code == 413
    assert "MLPLATFORM_MAX_ARTIFACT_BYTES" in response.json()["detail"]
    assert not ModelVersion.objects.exists()


def test_version_detail_list_and_artifact_download(
    api_client: APIClient, open_model: RegisteredModel, estimators: dict[str, Any]
) -> None:
    version = ModelVersionFactory.create(model=open_model, estimator=estimators["linear"])
    services.alias_set(model=open_model, alias="production", version_number=1, user=None)

    detail = api_client.get(f"/api/v1/models/{open_model.name}/versions/1/").json()
    listing = api_client.get(f"/api/v1/models/{open_model.name}/versions/").json()
    download = api_client.get(f"/api/v1/models/{open_model.name}/versions/1/artifact")

    assert detail["status"] == "ready"
    assert detail["signature"]["task"] == "regression"
    assert detail["aliases"] == ["production"]
    assert {"library_versions", "created_at", "uploaded_by", "status_message"} <= detail.keys()
    assert listing["count"] == 1
    assert download.status_code == 200
    content = b"".join(download.streaming_content)  # type: ignore[attr-defined]
    assert download["X-Artifact-SHA256"] == version.sha256 == hashlib.sha256(content).hexdigest()
    assert api_client.get(f"/api/v1/models/{open_model.name}/versions/9/").status_code == 404


# --- aliases --------------------------------------------------------------------------------------


def test_alias_put_moves_and_delete_removes_with_history(
    member: Any, registered: RegisteredModel, estimators: dict[str, Any]
) -> None:
    ModelVersionFactory.create(model=registered, estimator=estimators["linear"])
    ModelVersionFactory.create(model=registered, estimator=estimators["linear"])
    team = bearer_client(member)
    url = f"/api/v1/models/{registered.name}/aliases/production/"

    first = team.put(url, {"version": 1}, format="json")
    moved = team.put(url, {"version": 2}, format="json")
    listing = team.get(f"/api/v1/models/{registered.name}/aliases/").json()

    assert first.status_code == 200
    assert first.json() == {"alias": "production", "version": 1}
    assert moved.json() == {"alias": "production", "version": 2}
    assert [(a["alias"], a["version"]) for a in listing["results"]] == [("production", 2)]
    assert team.delete(url).status_code == 204
    assert team.delete(url).status_code == 404
    history = [(c.from_version, c.to_version, c.changed_by) for c in AliasChange.objects.all()]
    assert history == [(2, None, member), (1, 2, member), (None, 1, member)]


def test_alias_changes_are_forbidden_outside_the_team(
    api_client: APIClient, registered: RegisteredModel, estimators: dict[str, Any]
) -> None:
    ModelVersionFactory.create(model=registered, estimator=estimators["linear"])

    response = api_client.put(
        f"/api/v1/models/{registered.name}/aliases/production/", {"version": 1}, format="json"
    )

    assert response.status_code == 403
    assert not AliasChange.objects.exists()


def test_alias_to_a_pending_or_missing_version_is_refused(
    member: Any, registered: RegisteredModel, estimators: dict[str, Any]
) -> None:
    upload(registered, serialise(estimators["linear"], "joblib"))
    team = bearer_client(member)
    url = f"/api/v1/models/{registered.name}/aliases/production/"

    pending = team.put(url, {"version": 1}, format="json")
    missing = team.put(url, {"version": 7}, format="json")
    invalid = team.put(url, {"version": "one"}, format="json")

    assert pending.status_code == 409
    assert "pending" in pending.json()["detail"]
    assert missing.status_code == 404
    assert invalid.status_code == 400
    assert "version" in invalid.json()["detail"]


def test_openapi_schema_documents_the_registry_routes(api_client: APIClient) -> None:
    schema = api_client.get("/api/schema/?format=json").json()

    paths = schema["paths"]
    assert "/api/v1/models/{name}/versions/" in paths
    assert "post" in paths["/api/v1/models/{name}/versions/"]
    assert "put" in paths["/api/v1/models/{name}/aliases/{alias}/"]
    assert "/api/v1/models/{name}/versions/{version}/artifact" in paths
