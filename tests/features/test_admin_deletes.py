"""Every admin delete of the feature catalog, single and bulk, goes through the services: nothing
is left behind (Parquet partitions and their rows, online values, beat tasks, uploaded files) and
the audit trail keeps a delete record."""

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from django.test import Client
from django_celery_beat.models import PeriodicTask

from features import online, services
from features.models import (
    DataSource,
    Entity,
    Feature,
    FeatureGroup,
    FeatureService,
    OfflinePartition,
)
from tests.admin_actions import delete_one, delete_selected, deleted_in_audit_trail
from tests.conftest import admin_client_for
from tests.features.conftest import csv_file

pytestmark = pytest.mark.django_db

ROWS = [
    {"customer_id": i, "event_timestamp": "2025-01-01T00:00:00Z", "spend": float(i)}
    for i in range(1, 6)
]


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


def stored_group(name: str, entity: Entity, red: Group) -> FeatureGroup:
    """A scheduled group with ingested partitions and materialised online values."""
    group = services.group_create(
        name=name,
        entity=entity,
        features=[{"name": "spend", "dtype": "float64"}],
        owner=red,
        transformation_sql="SELECT customer_id, event_timestamp, spend FROM src",
        schedule="0 3 * * *",
    )
    services.ingestion_start(group=group, file=csv_file(ROWS), size=1)
    services.materialise_group(group=group)
    return group


def leftovers(group: FeatureGroup, paths: list[str]) -> dict[str, Any]:
    return {
        "files": [path for path in paths if default_storage.exists(path)],
        "partitions": OfflinePartition.objects.filter(group_id=group.pk).count(),
        "online values": online.store().count(group),
        "beat tasks": PeriodicTask.objects.filter(name__contains=f"(#{group.pk})").count(),
    }


def test_deleting_a_group_in_the_admin_leaves_nothing_behind(
    rita: Client, entity: Entity, red: Group, django_capture_on_commit_callbacks: Any
) -> None:
    # Given a group with stored partitions, online values and a beat task
    group = stored_group("customer_stats", entity, red)
    paths = list(group.partitions.values_list("path", flat=True))
    before = leftovers(group, paths)

    # When its team deletes it on its admin page
    with django_capture_on_commit_callbacks(execute=True):
        response = delete_one(rita, group)

    # Then it is gone with everything it stored, and the audit trail says so
    assert before == {"files": paths, "partitions": 1, "online values": 5, "beat tasks": 1}
    assert response.status_code == 302
    assert not FeatureGroup.objects.filter(pk=group.pk).exists()
    assert leftovers(group, paths) == {
        "files": [],
        "partitions": 0,
        "online values": 0,
        "beat tasks": 0,
    }
    assert deleted_in_audit_trail(group)


def test_deleting_selected_groups_in_the_admin_leaves_nothing_behind(
    rita: Client, entity: Entity, red: Group, django_capture_on_commit_callbacks: Any
) -> None:
    # Given two groups with stored data and beat tasks
    groups = [stored_group(name, entity, red) for name in ("first", "second")]
    paths = list(OfflinePartition.objects.filter(group__in=groups).values_list("path", flat=True))

    # When both are deleted with the "delete selected" action
    with django_capture_on_commit_callbacks(execute=True):
        response = delete_selected(rita, groups)

    # Then nothing of either is left, and each has its delete record
    assert response.status_code == 302
    assert len(paths) == 2
    for group in groups:
        assert leftovers(group, paths) == {
            "files": [],
            "partitions": 0,
            "online values": 0,
            "beat tasks": 0,
        }
        assert deleted_in_audit_trail(group)


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_an_entity_a_group_uses_cannot_be_deleted_in_the_admin(
    rita: Client, entity: Entity, red: Group, bulk: bool
) -> None:
    # Given an entity a group uses
    services.group_create(name="stats", entity=entity, features=[], owner=red)

    # When its team tries to delete it
    response = delete_selected(rita, [entity]) if bulk else delete_one(rita, entity)

    # Then Django's "cannot delete" page names the group, and the entity stays
    assert response.status_code == 200
    assert "stats" in response.content.decode()
    assert Entity.objects.filter(pk=entity.pk).exists()


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_deleting_an_unused_entity_in_the_admin_is_audited(
    rita: Client, entity: Entity, bulk: bool
) -> None:
    response = delete_selected(rita, [entity]) if bulk else delete_one(rita, entity)

    assert response.status_code == 302
    assert not Entity.objects.filter(pk=entity.pk).exists()
    assert deleted_in_audit_trail(entity)


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_deleting_an_uploaded_source_in_the_admin_removes_its_file(
    rita: Client, red: Group, bulk: bool, django_capture_on_commit_callbacks: Any
) -> None:
    # Given a source made from an uploaded file
    source = services.source_create(name="raw", file=csv_file(ROWS), owner=red)
    path = source.file.name

    # When its team deletes it
    with django_capture_on_commit_callbacks(execute=True):
        response = delete_selected(rita, [source]) if bulk else delete_one(rita, source)

    # Then the row and the file are gone, and the audit trail keeps the delete
    assert default_storage.exists(path) is False
    assert response.status_code == 302
    assert not DataSource.objects.filter(pk=source.pk).exists()
    assert deleted_in_audit_trail(source)


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_deleting_a_feature_service_in_the_admin_is_audited(
    rita: Client, entity: Entity, red: Group, bulk: bool
) -> None:
    services.group_create(name="stats", entity=entity, features=[{"name": "spend"}], owner=red)
    service = services.service_create(name="svc", features=["stats:spend"], owner=red)

    response = delete_selected(rita, [service]) if bulk else delete_one(rita, service)

    assert response.status_code == 302
    assert not FeatureService.objects.filter(pk=service.pk).exists()
    assert Feature.objects.filter(name="spend").exists()
    assert deleted_in_audit_trail(service)


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_a_feature_with_stored_data_cannot_be_deleted_in_the_admin(
    rita: Client, entity: Entity, red: Group, bulk: bool
) -> None:
    # Given a feature whose group holds stored data with its column
    group = stored_group("customer_stats", entity, red)
    feature = group.features.get(name="spend")

    # When its team tries to delete it
    response = delete_selected(rita, [feature]) if bulk else delete_one(rita, feature)

    # Then the admin says why, and nothing is deleted
    assert response.status_code == 302
    assert "holds stored data" in str(list(response.wsgi_request._messages))
    assert Feature.objects.filter(pk=feature.pk).exists()
    assert not deleted_in_audit_trail(feature)


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_a_feature_nothing_holds_is_deleted_in_the_admin_and_audited(
    rita: Client, entity: Entity, red: Group, bulk: bool
) -> None:
    group = services.group_create(
        name="stats", entity=entity, features=[{"name": "typo"}], owner=red
    )
    feature = group.features.get()

    response = delete_selected(rita, [feature]) if bulk else delete_one(rita, feature)

    assert response.status_code == 302
    assert not Feature.objects.filter(pk=feature.pk).exists()
    assert deleted_in_audit_trail(feature)


def test_a_partition_is_not_deleted_on_its_own_in_the_admin(
    rita: Client, entity: Entity, red: Group
) -> None:
    # Given a group's stored partition
    group = stored_group("customer_stats", entity, red)
    partition = group.partitions.get()

    # When its team tries to delete the partition alone, on its page or with the action
    single = rita.post(f"/admin/features/offlinepartition/{partition.pk}/delete/", {"post": "yes"})
    bulk = delete_selected(rita, [partition])

    # Then neither deletes it: its file and row go only with the group
    assert single.status_code == 403
    assert bulk.status_code == 200  # the list again: there is no delete action to run
    assert OfflinePartition.objects.filter(pk=partition.pk).exists()
    assert default_storage.exists(partition.path)
