"""Registered models under the team rules: another team's member (with every registry
permission) changes nothing; a version links only feature services its team may read; a model's
prediction log is its team's, or granted."""

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from features import services as feature_services
from features.models import Entity, FeatureService
from registry import services
from registry.models import ModelAlias, ModelVersion, RegisteredModel
from tenancy.services import PermissionDeniedError, grant_create
from tests.conftest import client_for, team_member
from tests.registry.conftest import serialise, upload

pytestmark = pytest.mark.django_db


def person(django_user_model: Any, name: str, team: Group | None) -> Any:
    return team_member(django_user_model, name, team, apps=("registry",))


@pytest.fixture
def teams(django_user_model: Any, estimators: dict[str, Any]) -> dict[str, Any]:
    red, blue = Group.objects.create(name="red"), Group.objects.create(name="blue")
    rita = person(django_user_model, "rita", red)
    model = services.model_create(name="churn", owner=red, user=rita)
    version = upload(model, serialise(estimators["linear"], "joblib"), user=rita)
    services.version_validate(version_id=version.pk)
    services.alias_set(model=model, alias="production", version_number=1, user=rita)
    return {
        "red": red,
        "blue": blue,
        "rita": rita,
        "bob": person(django_user_model, "bob", blue),
        "model": model,
    }


def test_another_teams_member_changes_nothing_of_a_model(
    teams: dict[str, Any], estimators: dict[str, Any]
) -> None:
    bob = client_for(teams["bob"])
    artifact = SimpleUploadedFile("m.joblib", serialise(estimators["linear"], "joblib"))

    responses = [
        bob.patch("/api/v1/models/churn/", {"description": "x"}, format="json"),
        bob.patch("/api/v1/models/churn/", {"owner": "blue"}, format="json"),
        bob.post("/api/v1/models/churn/versions/", {"artifact": artifact}, format="multipart"),
        bob.patch("/api/v1/models/churn/versions/1/", {"description": "x"}, format="json"),
        bob.put("/api/v1/models/churn/aliases/staging/", {"version": 1}, format="json"),
        bob.delete("/api/v1/models/churn/aliases/production/"),
        bob.delete("/api/v1/models/churn/"),
    ]

    for response in responses:
        assert response.status_code == 403, response.content
        assert "red" in response.json()["detail"]
    model = RegisteredModel.objects.get(name="churn")
    assert (model.description, model.owner) == ("", teams["red"])
    assert model.versions.count() == 1
    assert model.versions.get().description == ""
    assert list(ModelAlias.objects.values_list("alias", flat=True)) == ["production"]


def test_a_new_model_belongs_to_a_team_of_its_creators(teams: dict[str, Any]) -> None:
    rita = client_for(teams["rita"])

    created = rita.post("/api/v1/models/", {"name": "fraud"}, format="json")
    foreign = rita.post("/api/v1/models/", {"name": "spam", "owner": "blue"}, format="json")

    assert created.status_code == 201
    assert created.json()["owner"] == "red"
    assert foreign.status_code == 403
    assert not RegisteredModel.objects.filter(name="spam").exists()


def test_the_owning_team_needs_the_permission_too(
    teams: dict[str, Any], django_user_model: Any
) -> None:
    reader = django_user_model.objects.create_user("rob", password="pw-123-abc")
    reader.groups.add(teams["red"])

    response = client_for(reader).patch(
        "/api/v1/models/churn/", {"description": "x"}, format="json"
    )

    assert response.status_code == 403
    assert "registry.change_registeredmodel" in response.json()["detail"]


def _blue_service(teams: dict[str, Any]) -> FeatureService:
    entity = Entity.objects.create(name="customer", join_keys=["customer_id"], owner=teams["blue"])
    group = feature_services.group_create(
        name="blue_stats",
        entity=entity,
        features=[{"name": "spend", "dtype": "float64"}],
        owner=teams["blue"],
    )
    service = FeatureService.objects.create(name="blue-svc", owner=teams["blue"])
    service.features.set(group.features.all())
    return service


def test_a_version_links_another_teams_features_only_with_a_grant(
    teams: dict[str, Any], estimators: dict[str, Any]
) -> None:
    service = _blue_service(teams)
    data = serialise(estimators["linear"], "joblib")

    with pytest.raises(PermissionDeniedError, match="blue_stats belongs to blue"):
        services.version_upload(
            model=teams["model"],
            file=ContentFile(data, name="m.joblib"),
            user=teams["rita"],
            feature_service=service,
        )
    assert teams["model"].versions.count() == 1

    # blue's member who may change the group grants red a read
    teams["bob"].user_permissions.add(Permission.objects.get(codename="change_featuregroup"))
    bob = type(teams["bob"]).objects.get(pk=teams["bob"].pk)  # fresh permission cache
    grant_create(team=teams["red"], target=service.features.get().group, user=bob)
    linked = services.version_upload(
        model=teams["model"],
        file=ContentFile(data, name="m.joblib"),
        user=teams["rita"],
        feature_service=service,
    )
    assert linked.feature_service == service


def test_a_linked_service_cannot_grow_into_features_its_models_may_not_read(
    teams: dict[str, Any], estimators: dict[str, Any]
) -> None:
    # given red's model linked to red's own service
    red_entity = Entity.objects.create(name="shop", join_keys=["shop_id"], owner=teams["red"])
    feature_services.group_create(
        name="red_stats",
        entity=red_entity,
        features=[{"name": "visits", "dtype": "int64"}],
        owner=teams["red"],
    )
    service = feature_services.service_create(
        name="red-svc", features=["red_stats:visits"], owner=teams["red"]
    )
    ModelVersion.objects.filter(model=teams["model"]).update(feature_service=service)
    _blue_service(teams)

    # when the service is changed to read blue's features, then that is refused
    with pytest.raises(PermissionDeniedError):
        feature_services.service_update(
            service=service, features=["red_stats:visits", "blue_stats:spend"]
        )
    assert service.features.count() == 1


def test_a_prediction_log_page_is_the_teams_or_granted(teams: dict[str, Any], client: Any) -> None:
    client.force_login(teams["bob"])

    assert client.get("/models/churn/").status_code == 200  # the catalog stays open
    assert client.get("/serving/models/churn/predictions/").status_code == 403
    assert client.get("/serving/models/churn/predictions/?format=csv").status_code == 403

    grant_create(team=teams["blue"], target=teams["model"], user=teams["rita"])
    assert client.get("/serving/models/churn/predictions/").status_code == 200
