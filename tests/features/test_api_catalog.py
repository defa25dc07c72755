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
    from django.contrib.auth.models import Group, Permission
    from rest_framework.test import APIClient

    from tests.conftest import api_key_for

    reader = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    reader.groups.add(Group.objects.get(name="data"))  # the customer entity's team
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(reader)}")
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


@pytest.fixture
def signups(settings: Any) -> str:
    """A table the operator put in the database for features, and opened to them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE customer_signups (id INTEGER, joined TIMESTAMP, score REAL)")
        cursor.execute(
            "INSERT INTO customer_signups VALUES (1, '2025-01-01 00:00:00', 0.5), "
            "(2, '2025-02-01 00:00:00', 1.5)"
        )
    settings.MLPLATFORM_SOURCE_TABLES = ["customer_signups"]
    return "customer_signups"


def test_source_kinds(api_client, customer, signups):
    missing_file = api_client.post(
        "/api/v1/features/sources/", {"name": "s1", "kind": "file"}, format="json"
    )
    assert missing_file.status_code == 400
    assert "file" in missing_file.json()["detail"]
    table = api_client.post(
        "/api/v1/features/sources/",
        {"name": "signups", "kind": "sql_table", "path": signups},
        format="json",
    )
    assert table.status_code == 201
    assert api_client.get("/api/v1/features/sources/signups/").json()["kind"] == "sql_table"


def test_sql_table_source_feeds_a_transformation(api_client, customer, signups):
    from features import tasks

    api_client.post(
        "/api/v1/features/sources/",
        {"name": "signups", "kind": "sql_table", "path": signups},
        format="json",
    )
    make_group(
        api_client,
        name="vips",
        features=[{"name": "score", "dtype": "float64"}],
        transformation_sql=(
            "SELECT id AS customer_id, joined AS event_timestamp, score FROM signups"
        ),
        transformation_sources=["signups"],
    )
    job_id = api_client.post("/api/v1/features/groups/vips/run").json()["job"]
    tasks.transformation_run(job_id)
    job: dict[str, Any] = api_client.get(f"/api/v1/jobs/{job_id}/").json()
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["appended"] == 2


PLATFORM_TABLES = [
    "authtoken_token",
    "auth_user",
    "django_session",
    "registry_modelversion",
    "jobs_job",
    "AUTH_USER",
    "main.authtoken_token",
    "public.auth_user",
    "django_celery_beat_periodictask",
]


@pytest.mark.parametrize("table", PLATFORM_TABLES)
def test_the_platforms_own_tables_are_never_feature_sources(api_client, customer, settings, table):
    from features.models import DataSource

    # even when an operator listed them by mistake
    settings.MLPLATFORM_SOURCE_TABLES = [table]

    response = api_client.post(
        "/api/v1/features/sources/",
        {"name": "stolen", "kind": "sql_table", "path": table},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["field"] == "path"
    assert not DataSource.objects.filter(name="stolen").exists()


def test_unlisted_tables_are_refused_with_the_settings_named(api_client, customer):
    response = api_client.post(
        "/api/v1/features/sources/",
        {"name": "other", "kind": "sql_table", "path": "customer_signups"},
        format="json",
    )

    assert response.status_code == 400
    assert "MLPLATFORM_SOURCE_TABLES" in response.json()["detail"]


def test_a_source_stored_before_the_check_cannot_read_tokens(api_client, customer, user):
    from features import tasks
    from features.models import DataSource, FeatureGroup

    # given a source on the token table that an older platform accepted, and a group over it
    DataSource.objects.create(
        name="tokens", kind="sql_table", path="authtoken_token", owner=user.groups.first()
    )
    make_group(
        api_client,
        name="leak",
        features=[{"name": "key", "dtype": "string"}],
        transformation_sql=("SELECT 1 AS customer_id, created AS event_timestamp, key FROM tokens"),
        transformation_sources=["tokens"],
    )

    # when its transformation runs
    job_id = api_client.post("/api/v1/features/groups/leak/run").json()["job"]
    tasks.transformation_run(job_id)

    # then it fails naming why, and nothing was published
    job: dict[str, Any] = api_client.get(f"/api/v1/jobs/{job_id}/").json()
    assert job["status"] == "failed"
    assert "platform's own tables" in job["error"]
    group = FeatureGroup.objects.get(name="leak")
    assert not group.partitions.exists()


@pytest.mark.parametrize(
    "path",
    [
        "artifacts/1/model.joblib",
        "jobs/inputs/other-team.csv",
        "sources/../artifacts/1/model.joblib",
        "/etc/passwd",
        "../../var/db.sqlite3",
        "sources/..\\jobs/x.csv",
        "sources/rivals/their-customers.csv",  # another team's area
        "sources/data/../rivals/their-customers.csv",
        "sources/shared.csv",  # the area's root belongs to no team
    ],
)
def test_storage_sources_only_from_the_team_s_sources_area(api_client, customer, path):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    # given files that exist in storage outside the sources area
    default_storage.save("artifacts/1/model.joblib", ContentFile(b"secret"))
    default_storage.save("jobs/inputs/other-team.csv", ContentFile(b"a,b\n1,2\n"))
    default_storage.save("sources/rivals/their-customers.csv", ContentFile(b"a,b\n1,2\n"))
    default_storage.save("sources/shared.csv", ContentFile(b"a,b\n1,2\n"))

    response = api_client.post(
        "/api/v1/features/sources/",
        {"name": "peek", "kind": "storage_path", "path": path},
        format="json",
    )

    assert response.status_code == 400
    assert "sources/data/" in response.json()["detail"]


def test_storage_sources_inside_the_sources_area_are_accepted(api_client, customer):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    # alice is in the team `data`: its area is sources/data/
    stored = default_storage.save("sources/data/clicks.csv", ContentFile(b"customer_id\n1\n"))

    response = api_client.post(
        "/api/v1/features/sources/",
        {"name": "clicks", "kind": "storage_path", "path": stored},
        format="json",
    )

    assert response.status_code == 201, response.json()


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
