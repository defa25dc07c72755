"""The audit trail: every write leaves who, what, when and from -> to, browsable per object."""

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from rest_framework.test import APIClient

from registry.models import RegisteredModel
from tests.conftest import api_key_for, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def writer(user: Any) -> Any:
    """alice (team `data`) with the registry's permissions."""
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="registry"))
    return user


@pytest.fixture
def other(django_user_model: Any) -> Any:
    """mallory, of another team, with the same permissions."""
    mallory = django_user_model.objects.create_user(username="mallory", password="pw-mallory-1")
    mallory.groups.add(Group.objects.create(name="rivals"))
    mallory.user_permissions.add(*Permission.objects.filter(content_type__app_label="registry"))
    return mallory


_client = client_for


def _trail(client: APIClient, model: RegisteredModel) -> Any:
    return client.get(f"/api/v1/audit/registry.registeredmodel/{model.pk}/")


def test_api_writes_record_the_token_user_and_each_field_from_to(writer):
    client = _client(writer)
    assert client.post("/api/v1/models/", {"name": "churn"}, format="json").status_code == 201
    response = client.patch(
        "/api/v1/models/churn/", {"description": "predicts churn"}, format="json"
    )
    assert response.status_code == 200, response.json()
    model = RegisteredModel.objects.get(name="churn")

    response = _trail(client, model)

    assert response.status_code == 200
    records = response.json()["results"]
    update, create = records[0], records[-1]
    assert create["action"] == "create"
    assert update["action"] == "update"
    assert {record["actor"] for record in records} == {"alice"}
    assert update["changes"]["description"] == ["", "predicts churn"]
    assert create["changes"]["name"] == ["None", "churn"]
    assert "versions" not in create["changes"]  # a reverse relation is not a field of it
    assert update["remote_addr"] == "127.0.0.1"


def test_a_forwarded_address_is_not_taken_as_the_client_address(writer):
    client = _client(writer)
    client.post(
        "/api/v1/models/", {"name": "churn"}, format="json", HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    record = _trail(client, RegisteredModel.objects.get(name="churn")).json()["results"][0]
    assert record["remote_addr"] == "127.0.0.1"


def test_writes_outside_a_request_are_the_platform_s(writer):
    model = RegisteredModel.objects.create(name="churn", owner=writer.groups.first())
    model.description = "changed by a task"
    model.save()

    records = _trail(_client(writer), model).json()["results"]

    assert [record["actor"] for record in records] == [None, None]
    assert records[0]["changes"]["description"] == ["", "changed by a task"]


def test_another_team_cannot_read_the_trail(writer, other):
    _client(writer).post("/api/v1/models/", {"name": "churn"}, format="json")
    model = RegisteredModel.objects.get(name="churn")

    response = _trail(_client(other), model)

    assert response.status_code == 404
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audit/serving.predictionlog/1/",  # not audited
        "/api/v1/audit/auth.user/not-a-number/",
        "/api/v1/audit/nonsense/1/",
        "/api/v1/audit/registry.registeredmodel/999999/",
    ],
)
def test_unknown_kinds_and_objects_are_404_json(writer, path):
    response = _client(writer).get(path)
    assert response.status_code == 404
    assert "detail" in response.json()


def test_anonymous_clients_get_401(anon_client):
    response = anon_client.get("/api/v1/audit/registry.registeredmodel/1/")
    assert response.status_code == 401


def test_a_deleted_object_keeps_its_trail_for_superusers(writer, django_user_model):
    client = _client(writer)
    client.post("/api/v1/models/", {"name": "churn"}, format="json")
    model = RegisteredModel.objects.get(name="churn")
    pk = model.pk
    assert client.delete("/api/v1/models/churn/").status_code == 204

    admin = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    response = _client(admin).get(f"/api/v1/audit/registry.registeredmodel/{pk}/")

    assert response.status_code == 200
    actions = [record["action"] for record in response.json()["results"]]
    assert actions == ["delete", "create"]
    assert response.json()["results"][0]["actor"] == "alice"


def test_token_records_never_hold_the_key_or_its_digest(writer):
    key = api_key_for(writer, name="ci")
    from accounts.models import ApiToken

    token = ApiToken.objects.get(name="ci")
    response = _client(writer).get(f"/api/v1/audit/accounts.apitoken/{token.pk}/")

    assert response.status_code == 200
    text = response.content.decode()
    assert key not in text
    assert token.digest not in text
    assert response.json()["results"][0]["action"] == "create"


def test_the_history_page_shows_who_changed_what(client, writer):
    api = _client(writer)
    api.post("/api/v1/models/", {"name": "churn"}, format="json")
    api.patch("/api/v1/models/churn/", {"description": "v2 of the text"}, format="json")
    model = RegisteredModel.objects.get(name="churn")
    client.force_login(writer)

    response = client.get(reverse("audit", args=["registry.registeredmodel", model.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "alice" in html
    assert "description" in html
    assert "v2 of the text" in html


def test_the_history_page_of_another_team_s_object_is_404(client, writer, other):
    _client(writer).post("/api/v1/models/", {"name": "churn"}, format="json")
    model = RegisteredModel.objects.get(name="churn")
    client.force_login(other)

    response = client.get(reverse("audit", args=["registry.registeredmodel", model.pk]))

    assert response.status_code == 404


def test_the_model_page_links_to_its_history(client, writer):
    _client(writer).post("/api/v1/models/", {"name": "churn"}, format="json")
    model = RegisteredModel.objects.get(name="churn")
    client.force_login(writer)

    html = client.get("/models/churn/").content.decode()

    assert reverse("audit", args=["registry.registeredmodel", model.pk]) in html


def test_the_admin_shows_an_object_s_trail_to_its_team_only(client, writer, other):
    _client(writer).post("/api/v1/models/", {"name": "churn"}, format="json")
    _client(writer).patch("/api/v1/models/churn/", {"description": "by api"}, format="json")
    model = RegisteredModel.objects.get(name="churn")
    url = reverse("admin:registry_registeredmodel_auditlog", args=[model.pk])
    for person in (writer, other):
        person.is_staff = True
        person.save()

    client.force_login(writer)
    mine = client.get(url)
    client.force_login(other)
    theirs = client.get(url)

    assert mine.status_code == 200
    assert "by api" in mine.content.decode()
    assert theirs.status_code == 403
