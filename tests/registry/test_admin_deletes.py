"""Every admin delete of the registry, single and bulk, goes through the services: artifacts and
compiled graphs leave storage once the delete commits, the aliases a deleted version carried are
recorded as removed, and the audit trail keeps a delete record."""

import hashlib
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.test import Client

from registry import services
from registry.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel
from tests.admin_actions import delete_one, delete_selected, deleted_in_audit_trail
from tests.conftest import admin_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def red() -> Group:
    return Group.objects.create(name="red")


@pytest.fixture
def rita(django_user_model: Any, red: Group) -> Client:
    """Staff of team red with every permission of the registry, signed in to the admin."""
    return admin_client_for(django_user_model, "rita", red, apps=("registry",))


def ready_version(model: RegisteredModel, number: int) -> ModelVersion:
    """A ready version with an artifact and a compiled graph in storage."""
    artifact, graph = f"artifact {model.name} {number}".encode(), f"graph {number}".encode()
    version = ModelVersion(
        model=model,
        version=number,
        sha256=hashlib.sha256(artifact).hexdigest(),
        graph_sha256=hashlib.sha256(graph).hexdigest(),
        format=ModelVersion.Format.SKOPS,
        status=ModelVersion.Status.READY,
        engine=ModelVersion.Engine.ONNX,
    )
    version.artifact.save("model.skops", ContentFile(artifact), save=False)
    version.graph.save("model.onnx", ContentFile(graph), save=False)
    version.save()
    return version


@pytest.fixture
def churn(red: Group) -> RegisteredModel:
    """Model churn: v1 (production, champion) and v2 (staging), each with its two files."""
    model = services.model_create(name="churn", owner=red)
    first, second = ready_version(model, 1), ready_version(model, 2)
    for alias, version in (("production", first), ("champion", first), ("staging", second)):
        services.alias_set(model=model, alias=alias, version_number=version.version, user=None)
    return model


def stored_files(versions: list[ModelVersion]) -> list[str]:
    """The names of the versions' files still in storage."""
    return [f.name for v in versions for f in (v.artifact, v.graph) if f.storage.exists(f.name)]


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_deleting_a_model_in_the_admin_removes_its_artifacts_and_graphs(
    rita: Client,
    churn: RegisteredModel,
    red: Group,
    bulk: bool,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # Given two models, each with versions whose artifacts and graphs are stored
    other = services.model_create(name="fraud", owner=red)
    versions = [*churn.versions.all(), ready_version(other, 1)]
    before = stored_files(versions)

    # When its team deletes them (or churn alone) in the admin
    with django_capture_on_commit_callbacks(execute=True):
        response = delete_selected(rita, [churn, other]) if bulk else delete_one(rita, churn)

    # Then no file of a deleted version is left in storage, and each delete is audited
    deleted = [churn, other] if bulk else [churn]
    kept = [] if bulk else [v for v in versions if v.model_id == other.pk]
    assert len(before) == 6
    assert response.status_code == 302
    assert stored_files(versions) == stored_files(kept)
    assert len(stored_files(kept)) == 2 * len(kept)
    for model in deleted:
        assert not RegisteredModel.objects.filter(pk=model.pk).exists()
        assert deleted_in_audit_trail(model)
    for version in versions:
        if version.model_id in {m.pk for m in deleted}:
            assert deleted_in_audit_trail(version)


def test_deleting_a_version_in_the_admin_records_its_aliases_and_removes_its_files(
    rita: Client, churn: RegisteredModel, django_capture_on_commit_callbacks: Any
) -> None:
    # Given v1 holding production and champion, v2 holding staging
    first, second = churn.versions.get(version=1), churn.versions.get(version=2)

    # When v1 is deleted on its admin page
    with django_capture_on_commit_callbacks(execute=True):
        response = delete_one(rita, first)

    # Then its files are gone, each alias it held is recorded as removed, v2 is untouched
    assert response.status_code == 302
    assert stored_files([first]) == []
    assert len(stored_files([second])) == 2
    assert set(ModelAlias.objects.values_list("alias", flat=True)) == {"staging"}
    removed = AliasChange.objects.filter(to_version=None).order_by("alias")
    assert [(c.alias, c.from_version, str(c.changed_by)) for c in removed] == [
        ("champion", 1, "rita"),
        ("production", 1, "rita"),
    ]
    assert deleted_in_audit_trail(first)


def test_deleting_selected_versions_in_the_admin_records_every_alias_and_file(
    rita: Client, churn: RegisteredModel, django_capture_on_commit_callbacks: Any
) -> None:
    # Given both versions of churn, with three aliases between them
    versions = list(churn.versions.all())

    # When both are deleted with the "delete selected" action
    with django_capture_on_commit_callbacks(execute=True):
        response = delete_selected(rita, versions)

    # Then no file is left, the model stays, and the three aliases are recorded as removed
    assert response.status_code == 302
    assert stored_files(versions) == []
    assert RegisteredModel.objects.filter(pk=churn.pk).exists()
    assert not ModelAlias.objects.exists()
    removed = AliasChange.objects.filter(to_version=None)
    assert sorted((c.alias, c.from_version) for c in removed) == [
        ("champion", 1),
        ("production", 1),
        ("staging", 2),
    ]
    assert all(deleted_in_audit_trail(v) for v in versions)
