"""The admin applies the same team rules as the API: another team's member, staff with every
permission, may look at its catalog objects but neither change nor delete them."""

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from batch.models import BatchSchedule
from features.models import DataSource, Entity, FeatureGroup, FeatureService
from jobs.models import Job
from registry.models import RegisteredModel
from tenancy.models import Grant

pytestmark = pytest.mark.django_db

APPS = ("features", "registry", "jobs", "batch", "tenancy")


@pytest.fixture
def red_objects(django_user_model: Any) -> dict[str, Any]:
    red = Group.objects.create(name="red")
    entity = Entity.objects.create(name="customer", join_keys=["customer_id"], owner=red)
    group = FeatureGroup.objects.create(name="customer_stats", entity=entity, owner=red)
    model = RegisteredModel.objects.create(name="churn", owner=red)
    return {
        "red": red,
        "entity": entity,
        "source": DataSource.objects.create(name="src", kind="sql_table", path="t", owner=red),
        "group": group,
        "service": FeatureService.objects.create(name="svc", owner=red),
        "model": model,
        "schedule": BatchSchedule.objects.create(
            name="nightly", model=model, folder="batch-inputs/red", owner=red
        ),
        "job": Job.objects.create(kind=Job.Kind.BATCH_SCORING, description="Score", owner=red),
    }


def staff(django_user_model: Any, name: str, team: Group) -> Client:
    user = django_user_model.objects.create_user(name, password="pw-123-abc", is_staff=True)
    user.groups.add(team)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=APPS))
    client = Client()
    client.force_login(user)
    return client


def _url(obj: Any, view: str) -> str:
    return f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/{view}/"


@pytest.mark.parametrize("key", ["entity", "source", "group", "service", "model", "schedule"])
def test_another_teams_staff_may_view_but_not_change_or_delete(
    red_objects: dict[str, Any], django_user_model: Any, key: str
) -> None:
    obj = red_objects[key]
    bob = staff(django_user_model, "bob", Group.objects.create(name="blue"))

    viewed = bob.get(_url(obj, "change"))
    changed = bob.post(_url(obj, "change"), {"name": "stolen", "description": "x"})
    delete_page = bob.get(_url(obj, "delete"))
    deleted = bob.post(_url(obj, "delete"), {"post": "yes"})

    assert viewed.status_code == 200
    assert 'name="_save"' not in viewed.content.decode()  # read-only
    assert changed.status_code == 403
    assert delete_page.status_code == 403
    assert deleted.status_code == 403
    assert type(obj).objects.filter(pk=obj.pk, name=obj.name).exists()


@pytest.mark.parametrize("key", ["entity", "source", "group", "service", "model", "schedule"])
def test_the_owning_teams_staff_may_change(
    red_objects: dict[str, Any], django_user_model: Any, key: str
) -> None:
    rita = staff(django_user_model, "rita", red_objects["red"])

    page = rita.get(_url(red_objects[key], "change"))

    assert page.status_code == 200
    assert 'name="_save"' in page.content.decode()


def test_the_delete_action_refuses_another_teams_objects(
    red_objects: dict[str, Any], django_user_model: Any
) -> None:
    bob = staff(django_user_model, "bob", Group.objects.create(name="blue"))
    group = red_objects["group"]

    response = bob.post(
        "/admin/features/featuregroup/",
        {"action": "delete_selected", "_selected_action": [group.pk], "post": "yes"},
    )

    assert response.status_code in (200, 403)
    assert FeatureGroup.objects.filter(pk=group.pk).exists()


def test_an_owner_can_only_be_one_of_ones_teams(
    red_objects: dict[str, Any], django_user_model: Any
) -> None:
    bob = staff(django_user_model, "bob", Group.objects.create(name="blue"))

    form = bob.get("/admin/features/entity/add/").content.decode()
    handed = bob.post(
        "/admin/features/entity/add/",
        {"name": "store", "join_keys": '["store_id"]', "owner": red_objects["red"].pk},
    )

    assert ">blue<" in form
    assert ">red<" not in form
    assert handed.status_code == 200  # the form again, with the error
    assert not Entity.objects.filter(name="store").exists()


def test_another_teams_jobs_are_not_in_the_admin(
    red_objects: dict[str, Any], django_user_model: Any
) -> None:
    bob = staff(django_user_model, "bob", Group.objects.create(name="blue"))
    job = red_objects["job"]

    listing = bob.get("/admin/jobs/job/").content.decode()
    detail = bob.get(_url(job, "change"))

    assert "Score" not in listing
    assert detail.status_code == 302  # "does not exist", back to the index
    assert bob.post(_url(job, "delete"), {"post": "yes"}).status_code == 302
    assert Job.objects.filter(pk=job.pk).exists()


def test_grants_are_given_by_the_owning_team_only(
    red_objects: dict[str, Any], django_user_model: Any
) -> None:
    from django.contrib.contenttypes.models import ContentType

    blue = Group.objects.create(name="blue")
    body = {
        "team": blue.pk,
        "content_type": ContentType.objects.get_for_model(FeatureGroup).pk,
        "object_id": red_objects["group"].pk,
        "access": "read",
    }

    refused = staff(django_user_model, "bob", blue).post("/admin/tenancy/grant/add/", body)
    assert refused.status_code == 200
    assert "Only its own team grants" in refused.content.decode()
    assert not Grant.objects.exists()

    given = staff(django_user_model, "rita", red_objects["red"]).post(
        "/admin/tenancy/grant/add/", body
    )
    assert given.status_code == 302
    assert Grant.objects.get().team == blue
