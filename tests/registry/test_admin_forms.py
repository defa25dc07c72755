"""The registered model's admin form applies the services' own rules (`alias_check`,
`model_fields_check`): a refusal is a form error and nothing of the post is saved."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from registry import services
from registry.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel
from tests.conftest import admin_client_for
from tests.registry.test_admin_deletes import ready_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def red() -> Group:
    return Group.objects.create(name="red")


@pytest.fixture
def rita(django_user_model: Any, red: Group) -> Client:
    """Staff of team red with every permission of the registry, signed in to the admin."""
    return admin_client_for(django_user_model, "rita", red, apps=("registry",))


@pytest.fixture
def churn(red: Group) -> RegisteredModel:
    model = services.model_create(name="churn", owner=red)
    ready_version(model, 1)
    return model


def model_form(model: RegisteredModel, **fields: Any) -> dict[str, Any]:
    return {
        "description": model.description,
        "owner": model.owner_id or "",
        "tags": json.dumps(model.tags),
        "aliases-TOTAL_FORMS": "0",
        "aliases-INITIAL_FORMS": "0",
        "versions-TOTAL_FORMS": "1",
        "versions-INITIAL_FORMS": "1",
        "versions-0-id": str(model.versions.get(version=1).pk),
        "versions-0-model": str(model.pk),
        **fields,
    }


def _change(model: RegisteredModel) -> str:
    return f"/admin/registry/registeredmodel/{model.pk}/change/"


def test_an_alias_name_the_service_refuses_is_a_form_error_and_nothing_is_saved(
    rita: Client, churn: RegisteredModel
) -> None:
    # When an alias with capitals is set together with a new description
    response = rita.post(
        _change(churn),
        model_form(churn, description="new words", alias_name="Prod", alias_version="1"),
    )

    # Then the page says why, and neither the alias nor the description is saved
    assert response.status_code == 200
    assert "use lowercase letters" in response.content.decode()
    churn.refresh_from_db()
    assert churn.description == ""
    assert not ModelAlias.objects.exists()
    assert not AliasChange.objects.exists()


def test_an_alias_on_a_version_that_is_not_ready_is_a_form_error(
    rita: Client, churn: RegisteredModel
) -> None:
    ModelVersion.objects.filter(model=churn).update(status=ModelVersion.Status.PENDING)

    response = rita.post(_change(churn), model_form(churn, alias_name="prod", alias_version="1"))

    assert response.status_code == 200
    assert "only ready versions may take an alias" in response.content.decode()
    assert not ModelAlias.objects.exists()


def test_model_tags_that_are_not_an_object_are_a_form_error(
    rita: Client, churn: RegisteredModel
) -> None:
    response = rita.post(_change(churn), model_form(churn, tags='["risk"]'))

    assert response.status_code == 200
    assert "must be a JSON object" in response.content.decode()
    churn.refresh_from_db()
    assert churn.tags == {}


def test_a_model_added_in_the_admin_is_registered_by_the_service(rita: Client, red: Group) -> None:
    response = rita.post(
        "/admin/registry/registeredmodel/add/",
        {
            "name": "fraud",
            "description": "Card fraud",
            "owner": red.pk,
            "tags": '{"team": "risk"}',
            "aliases-TOTAL_FORMS": "0",
            "aliases-INITIAL_FORMS": "0",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    model = RegisteredModel.objects.get(name="fraud")
    assert (model.description, model.tags, str(model.created_by)) == (
        "Card fraud",
        {"team": "risk"},
        "rita",
    )


def test_a_versions_description_changes_through_the_service(
    rita: Client, churn: RegisteredModel
) -> None:
    version = churn.versions.get()

    response = rita.post(
        f"/admin/registry/modelversion/{version.pk}/change/", {"description": "retrained"}
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    version.refresh_from_db()
    assert version.description == "retrained"
