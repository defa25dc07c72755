"""Catalog API and admin: create, read, update, conflicts and not-found as JSON."""

from typing import Any

import pytest

from tests.features.conftest import make_group

pytestmark = pytest.mark.django_db


def test_entity_conflict_and_not_found(api_client, customer):
    again = api_client.post(
        "/api/v1/features/entities/",
        {"name": "customer", "join_keys": ["customer_id"]},
        format="json",
    )
    assert again.status_code == 409
    assert api_client.get("/api/v1/features/entities/ghost/").status_code == 404
    bad = api_client.post(
        "/api/v1/features/entities/", {"name": "x", "join_keys": ["a b"]}, format="json"
    )
    assert bad.status_code == 400
    assert "join_keys" in bad.json()["detail"]


def test_anonymous_is_refused(anon_client):
    assert anon_client.get("/api/v1/features/features/").status_code in (401, 403)


def test_writes_need_the_model_permission_reads_a_login(customer, django_user_model):
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    reader = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=reader).key}")
    entity = {"name": "store", "join_keys": ["store_id"]}

    listed = client.get("/api/v1/features/entities/")
    refused = client.post("/api/v1/features/entities/", entity, format="json")
    renamed = client.patch("/api/v1/features/entities/customer/", {"description": "x"})
    ingest = client.post("/api/v1/features/groups/ghost/ingest", {})

    assert listed.status_code == 200
    assert listed.json()["count"] == 1
    assert refused.status_code == 403
    assert "features.add_entity" in refused.json()["detail"]
    assert renamed.status_code == 403
    assert "features.change_entity" in renamed.json()["detail"]
    assert ingest.status_code == 403  # ingesting changes a group
    assert "features.change_featuregroup" in ingest.json()["detail"]

    reader.user_permissions.add(Permission.objects.get(codename="add_entity"))
    allowed = client.post("/api/v1/features/entities/", entity, format="json")

    assert allowed.status_code == 201, allowed.content
    assert client.get("/api/v1/features/entities/").json()["count"] == 2


def test_group_update_adds_features_and_lists_them(api_client, customer):
    make_group(api_client, name="g1", features=[{"name": "a", "dtype": "int64"}])
    response = api_client.patch(
        "/api/v1/features/groups/g1/",
        {"description": "new", "add_features": [{"name": "b", "dtype": "bool"}], "tasks": ["x"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert [f["name"] for f in response.json()["features"]] == ["a", "b"]
    listed = api_client.get("/api/v1/features/features/?group=g1&task=x").json()
    assert listed["count"] == 2
    assert listed["results"][0]["ref"] == "g1:a"
    detail = api_client.patch(
        "/api/v1/features/features/g1/b/", {"description": "flag"}, format="json"
    )
    assert detail.json()["description"] == "flag"
    assert api_client.delete("/api/v1/features/groups/g1/").status_code == 204
    assert api_client.get("/api/v1/features/groups/g1/").status_code == 404


def test_source_kinds(api_client, customer):
    missing_file = api_client.post(
        "/api/v1/features/sources/", {"name": "s1", "kind": "file"}, format="json"
    )
    assert missing_file.status_code == 400
    assert "file" in missing_file.json()["detail"]
    table = api_client.post(
        "/api/v1/features/sources/",
        {"name": "users-table", "kind": "sql_table", "path": "auth_user"},
        format="json",
    )
    assert table.status_code == 201
    assert api_client.get("/api/v1/features/sources/users-table/").json()["kind"] == "sql_table"


def test_sql_table_source_feeds_a_transformation(api_client, customer, user):
    from features import tasks

    api_client.post(
        "/api/v1/features/sources/",
        {"name": "users-table", "kind": "sql_table", "path": "auth_user"},
        format="json",
    )
    make_group(
        api_client,
        name="staff",
        features=[{"name": "is_staff", "dtype": "bool"}],
        transformation_sql=(
            "SELECT id AS customer_id, date_joined AS event_timestamp, is_staff FROM users_table"
        ),
        transformation_sources=["users-table"],
    )
    job_id = api_client.post("/api/v1/features/groups/staff/run").json()["job"]
    tasks.transformation_run(job_id)
    job: dict[str, Any] = api_client.get(f"/api/v1/jobs/{job_id}/").json()
    assert job["status"] == "succeeded", job
    assert job["result"]["appended"] == 1


@pytest.mark.parametrize(
    "url",
    [
        "/admin/features/entity/",
        "/admin/features/datasource/",
        "/admin/features/featuregroup/",
        "/admin/features/feature/",
        "/admin/features/featureservice/",
        "/admin/features/offlinepartition/",
        "/admin/features/onlinevalue/",
    ],
)
def test_admin_pages(admin_client, url):
    assert admin_client.get(url).status_code == 200


def test_admin_rejects_a_bad_availability_rule(admin_client, api_client, customer):
    from features.models import Entity

    response = admin_client.post(
        "/admin/features/featuregroup/add/",
        {
            "name": "viaadmin",
            "entity": Entity.objects.get(name="customer").pk,
            "availability": '{"daily_at": "26:00"}',
            "tags": "{}",
            "tasks": "[]",
            "key_dtypes": "{}",
            "features-TOTAL_FORMS": "0",
            "features-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert b"daily_at" in response.content
