"""The feature catalog's admin forms apply the services' own rules: a refusal is a form error on
the page and nothing is saved; what keys stored data cannot change."""

import json
from collections.abc import Sequence
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_celery_beat.models import PeriodicTask

from features import services
from features.models import DataSource, Entity, Feature, FeatureGroup, FeatureService
from tests.conftest import admin_client_for
from tests.features.conftest import csv_file

pytestmark = pytest.mark.django_db

ROWS = [{"customer_id": 1, "event_timestamp": "2025-01-01T00:00:00Z", "spend": 1.0}]


@pytest.fixture
def red() -> Group:
    return Group.objects.create(name="red")


@pytest.fixture
def rita(django_user_model: Any, red: Group) -> Client:
    """Staff of team red with every permission of the feature store, signed in to the admin."""
    return admin_client_for(django_user_model, "rita", red, apps=("features",))


@pytest.fixture
def entity(red: Group) -> Entity:
    return services.entity_create(name="customer", join_keys=["customer_id"], owner=red)


@pytest.fixture
def group(entity: Entity, red: Group) -> FeatureGroup:
    return services.group_create(
        name="stats", entity=entity, features=[{"name": "spend"}], owner=red
    )


def group_form(
    red: Group, features: Sequence[dict[str, Any]] = (), **fields: Any
) -> dict[str, Any]:
    """The POST body of a feature group's admin page, with its feature rows."""
    body: dict[str, Any] = {
        "description": "",
        "transformation_sql": "",
        "schedule": "",
        "availability": "{}",
        "owner": red.pk,
        "tags": "{}",
        "tasks": "[]",
        "features-TOTAL_FORMS": str(len(features)),
        "features-INITIAL_FORMS": str(sum(1 for f in features if f.get("id"))),
        "features-MIN_NUM_FORMS": "0",
        "features-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, feature in enumerate(features):
        row = {"id": "", "description": "", "tags": "{}", "dtype": "float64", **feature}
        row.setdefault("position", index)  # read-only now; posted as the old page had it
        body |= {f"features-{index}-{key}": value for key, value in row.items()}
    return body


def change_form(
    group: FeatureGroup, red: Group, features: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    """The group's change page as posted; its name and entity, read-only now, are sent as the
    page once had them."""
    return group_form(red, features, name=group.name, entity=group.entity_id, **fields)


def _errors(response: Any) -> str:
    assert response.status_code == 200, response.status_code  # the form again, not a redirect
    return response.content.decode()


def test_a_group_schedule_without_sql_is_a_form_error(
    rita: Client, entity: Entity, red: Group
) -> None:
    response = rita.post(
        "/admin/features/featuregroup/add/",
        group_form(red, name="nightly", entity=entity.pk, schedule="0 3 * * *"),
    )

    assert "only a group with transformation SQL runs on a schedule" in _errors(response)
    assert not FeatureGroup.objects.filter(name="nightly").exists()
    assert not PeriodicTask.objects.filter(name__contains="nightly").exists()


def test_a_bad_group_schedule_is_a_form_error(rita: Client, entity: Entity, red: Group) -> None:
    response = rita.post(
        "/admin/features/featuregroup/add/",
        group_form(
            red,
            name="nightly",
            entity=entity.pk,
            transformation_sql="SELECT 1",
            schedule="0 3 * *",
        ),
    )

    assert "five-field cron expression" in _errors(response)
    assert not FeatureGroup.objects.filter(name="nightly").exists()


def test_a_group_added_in_the_admin_gets_its_features_and_beat_task_through_the_services(
    rita: Client, entity: Entity, red: Group
) -> None:
    response = rita.post(
        "/admin/features/featuregroup/add/",
        group_form(
            red,
            [{"name": "spend"}, {"name": "country", "dtype": "string"}],
            name="nightly",
            entity=entity.pk,
            transformation_sql="SELECT 1",
            schedule="0 3 * * *",
        ),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    group = FeatureGroup.objects.get(name="nightly")
    assert list(group.features.values_list("position", "name", "dtype")) == [
        (0, "spend", "float64"),
        (1, "country", "string"),
    ]
    assert PeriodicTask.objects.filter(name__contains=f"(#{group.pk})").count() == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("customer_id", "repeats a feature, a join key or a reserved name"),
        ("event_timestamp", "repeats a feature, a join key or a reserved name"),
        ("spend", "duplicate data"),
        ("bad-name", "is not a valid column name"),
    ],
)
def test_the_feature_inline_applies_the_feature_checks(
    rita: Client, group: FeatureGroup, red: Group, name: str, message: str
) -> None:
    # Given a group with the feature spend
    spend = group.features.get()

    # When a feature is added on the group's admin page with a name the API refuses
    response = rita.post(
        f"/admin/features/featuregroup/{group.pk}/change/",
        change_form(group, red, [{"id": spend.pk, "name": "spend"}, {"name": name}]),
    )

    # Then the page says why, and the group still has only spend
    assert message in _errors(response)
    assert list(group.features.values_list("name", flat=True)) == ["spend"]


def test_a_stored_features_name_and_dtype_do_not_change_in_the_inline(
    rita: Client, group: FeatureGroup, red: Group
) -> None:
    spend = group.features.get()

    response = rita.post(
        f"/admin/features/featuregroup/{group.pk}/change/",
        change_form(group, red, [{"id": spend.pk, "name": "spent", "dtype": "int64"}]),
    )

    assert "never change" in _errors(response)
    spend.refresh_from_db()
    assert (spend.name, spend.dtype) == ("spend", "float64")


def test_the_feature_inline_adds_and_describes_features_through_the_services(
    rita: Client, group: FeatureGroup, red: Group
) -> None:
    spend = group.features.get()

    response = rita.post(
        f"/admin/features/featuregroup/{group.pk}/change/",
        change_form(
            group,
            red,
            [
                {"id": spend.pk, "name": "spend", "description": "Total spend"},
                {"name": "orders", "dtype": "int64"},
            ],
        ),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(group.features.values_list("position", "name", "description")) == [
        (0, "spend", "Total spend"),
        (1, "orders", ""),
    ]


def test_a_feature_with_stored_data_is_not_removed_in_the_inline(
    rita: Client, group: FeatureGroup, red: Group
) -> None:
    services.ingestion_start(group=group, file=csv_file(ROWS), size=1)
    spend = group.features.get()

    response = rita.post(
        f"/admin/features/featuregroup/{group.pk}/change/",
        change_form(group, red, [{"id": spend.pk, "name": "spend", "DELETE": "on"}]),
    )

    assert "holds stored data" in _errors(response)
    assert Feature.objects.filter(pk=spend.pk).exists()


def test_a_reserved_join_key_is_a_form_error(rita: Client, red: Group) -> None:
    response = rita.post(
        "/admin/features/entity/add/",
        {"name": "store", "join_keys": '["event_timestamp"]', "owner": red.pk},
    )

    assert "reserved names" in _errors(response)
    assert not Entity.objects.filter(name="store").exists()


def test_join_keys_do_not_change_once_the_entity_exists(
    rita: Client, group: FeatureGroup, entity: Entity, red: Group
) -> None:
    # Given an entity a group keys its data by
    page = rita.get(f"/admin/features/entity/{entity.pk}/change/").content.decode()

    # When its team posts other join keys with a new description
    response = rita.post(
        f"/admin/features/entity/{entity.pk}/change/",
        {"join_keys": '["account_id"]', "description": "A customer", "owner": red.pk},
    )

    # Then the keys are shown read-only and stay; the description changes
    assert 'name="join_keys"' not in page
    assert response.status_code == 302
    entity.refresh_from_db()
    assert entity.join_keys == ["customer_id"]
    assert entity.description == "A customer"


def test_a_source_outside_the_teams_storage_area_is_a_form_error(rita: Client, red: Group) -> None:
    response = rita.post(
        "/admin/features/datasource/add/",
        {"name": "theirs", "kind": "storage_path", "path": "sources/blue/x.csv", "owner": red.pk},
    )

    assert "sources/red/" in _errors(response)
    assert not DataSource.objects.filter(name="theirs").exists()


def test_a_feature_service_reading_another_teams_group_is_a_form_error(
    rita: Client, entity: Entity, red: Group
) -> None:
    blue_group = services.group_create(
        name="blue_stats",
        entity=entity,
        features=[{"name": "spend"}],
        owner=Group.objects.create(name="blue"),
    )

    response = rita.post(
        "/admin/features/featureservice/add/",
        {"name": "svc", "features": [blue_group.features.get().pk], "owner": red.pk},
    )

    assert "needs a read grant" in _errors(response)
    assert not FeatureService.objects.exists()


def test_a_feature_service_added_in_the_admin_records_who_made_it(
    rita: Client, group: FeatureGroup, red: Group
) -> None:
    response = rita.post(
        "/admin/features/featureservice/add/",
        {"name": "svc", "features": [group.features.get().pk], "owner": red.pk},
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    service = FeatureService.objects.get(name="svc")
    assert str(service.created_by) == "rita"
    assert [str(f) for f in service.features.all()] == ["stats:spend"]


def test_group_tags_must_be_an_object(rita: Client, group: FeatureGroup, red: Group) -> None:
    spend = group.features.get()

    response = rita.post(
        f"/admin/features/featuregroup/{group.pk}/change/",
        change_form(group, red, [{"id": spend.pk, "name": "spend"}], tags=json.dumps(["x"])),
    )

    assert "must be an object" in _errors(response)
    group.refresh_from_db()
    assert group.tags == {}


def test_feature_tags_that_are_not_an_object_are_a_form_error_in_the_inline(
    rita: Client, group: FeatureGroup, red: Group
) -> None:
    spend = group.features.get()

    response = rita.post(
        f"/admin/features/featuregroup/{group.pk}/change/",
        change_form(group, red, [{"id": spend.pk, "name": "spend", "tags": '["pii"]'}]),
    )

    assert "must be an object" in _errors(response)
    spend.refresh_from_db()
    assert spend.tags == {}


def test_a_feature_page_changes_tags_through_the_service(rita: Client, group: FeatureGroup) -> None:
    # Given a feature whose statistics publish its top values
    spend = group.features.get()
    Feature.objects.filter(pk=spend.pk).update(statistics={"count": 3, "top": [["a", 2]]})
    # (the read-only fields, as the page once posted them)
    stored = {"group": group.pk, "name": "spend", "dtype": "float64", "position": 0}

    # When it is marked sensitive on its own admin page, and then given a list as tags
    marked = rita.post(
        f"/admin/features/feature/{spend.pk}/change/",
        {**stored, "description": "", "tags": '{"sensitive": true}'},
    )
    refused = rita.post(
        f"/admin/features/feature/{spend.pk}/change/",
        {**stored, "description": "", "tags": "[1]"},
    )

    # Then the service drops the raw values at once, and the list is a form error
    assert marked.status_code == 302
    spend.refresh_from_db()
    assert spend.statistics == {"count": 3, "sensitive": True}
    assert "must be an object" in _errors(refused)


def test_a_file_source_added_in_the_admin_is_stored_under_a_server_chosen_name(
    rita: Client, red: Group
) -> None:
    response = rita.post(
        "/admin/features/datasource/add/",
        {
            "name": "raw",
            "kind": "file",
            "file": SimpleUploadedFile("../../etc/passwd.csv", b"customer_id\n1\n"),
            "path": "",
            "owner": red.pk,
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    source = DataSource.objects.get(name="raw")
    assert source.file.name.startswith("feature-sources/raw-")
    assert source.file.read() == b"customer_id\n1\n"
