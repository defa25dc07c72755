"""Issue 11, finding 3 and its neighbours: another team's member, whatever permissions they hold,
changes nothing of a team's feature store; reading its values needs a grant."""

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django_celery_beat.models import PeriodicTask

from features import services
from features.models import DataSource, Entity, FeatureGroup, FeatureService
from tenancy.models import Grant
from tenancy.services import grant_create
from tests.conftest import client_for, team_member
from tests.features.conftest import csv_file, make_group

pytestmark = pytest.mark.django_db

GROUP_URL = "/api/v1/features/groups/customer_stats/"
ROWS = [
    {"customer_id": i, "event_timestamp": "2025-01-01T00:00:00Z", "spend": float(i)}
    for i in range(1, 6)
]


def person(django_user_model: Any, name: str, team: Group | None) -> Any:
    """A catalog editor: every permission of the feature store, in `team`."""
    return team_member(django_user_model, name, team, apps=("features",))


@pytest.fixture
def store(django_user_model: Any) -> dict[str, Any]:
    """Team red's entity, source, scheduled group (ingested and materialised) and service."""
    red, blue = Group.objects.create(name="red"), Group.objects.create(name="blue")
    rita = person(django_user_model, "rita", red)
    bob = person(django_user_model, "bob", blue)
    red_client = client_for(rita)
    assert (
        red_client.post(
            "/api/v1/features/entities/",
            {"name": "customer", "join_keys": ["customer_id"]},
            format="json",
        ).status_code
        == 201
    )
    source = red_client.post(
        "/api/v1/features/sources/",
        {"name": "red-src", "kind": "file", "file": csv_file(ROWS)},
        format="multipart",
    )
    assert source.status_code == 201, source.content
    make_group(
        red_client,
        name="customer_stats",
        features=[{"name": "spend", "dtype": "float64"}],
        transformation_sql="SELECT customer_id, event_timestamp, spend FROM src",
        transformation_sources=["red-src"],
        schedule="0 3 * * *",
    )
    ingested = red_client.post(f"{GROUP_URL}ingest", {"file": csv_file(ROWS)}, format="multipart")
    assert ingested.status_code == 201, ingested.content
    group = FeatureGroup.objects.get(name="customer_stats")
    services.materialise_group(group=group)
    service = red_client.post(
        "/api/v1/features/services/",
        {"name": "red-svc", "features": ["customer_stats:spend"]},
        format="json",
    )
    assert service.status_code == 201, service.content
    return {"red": red, "blue": blue, "rita": rita, "bob": bob, "group": group}


def _snapshot(group: FeatureGroup) -> tuple[Any, ...]:
    group.refresh_from_db()
    task = PeriodicTask.objects.get(name__contains=f"transform {group.name} ")
    return (
        group.description,
        group.schedule,
        group.owner_id,
        group.partitions.count(),
        group.features.count(),
        str(task.crontab),
    )


def test_everything_red_creates_belongs_to_red(store: dict[str, Any]) -> None:
    red = store["red"]
    assert Entity.objects.get(name="customer").owner == red
    assert DataSource.objects.get(name="red-src").owner == red
    assert store["group"].owner == red
    assert FeatureService.objects.get(name="red-svc").owner == red


def test_finding_3_another_teams_member_cannot_patch_ingest_reschedule_or_reown_a_group(
    store: dict[str, Any],
) -> None:
    # given bob of team blue, holding every permission of the feature store
    bob = client_for(store["bob"])
    before = _snapshot(store["group"])

    # when he patches, ingests into, reschedules and re-owns red's group
    patched = bob.patch(GROUP_URL, {"description": "blue's now"}, format="json")
    ingested = bob.post(f"{GROUP_URL}ingest", {"file": csv_file(ROWS)}, format="multipart")
    rescheduled = bob.patch(GROUP_URL, {"schedule": "* * * * *"}, format="json")
    reowned = bob.patch(GROUP_URL, {"owner": "blue"}, format="json")
    grown = bob.patch(GROUP_URL, {"add_features": [{"name": "x", "dtype": "int64"}]}, format="json")
    ran = bob.post(f"{GROUP_URL}run")
    materialised = bob.post(f"{GROUP_URL}materialize")
    deleted = bob.delete(GROUP_URL)

    # then every one is a 403 naming the owning team, and nothing changed
    for response in (patched, ingested, rescheduled, reowned, grown, ran, materialised, deleted):
        assert response.status_code == 403, response.content
        assert "red" in response.json()["detail"]
    assert _snapshot(store["group"]) == before


def test_a_member_hands_a_group_only_to_a_team_of_theirs(
    store: dict[str, Any], django_user_model: Any
) -> None:
    rita = client_for(store["rita"])

    refused = rita.patch(GROUP_URL, {"owner": "blue"}, format="json")
    abandoned = rita.patch(GROUP_URL, {"owner": None}, format="json")

    assert refused.status_code == 403
    assert "not a member of the team blue" in refused.json()["detail"]
    assert abandoned.status_code == 403  # no team = admin-only: only an admin leaves it so
    store["group"].refresh_from_db()
    assert store["group"].owner == store["red"]

    store["rita"].groups.add(Group.objects.create(name="green"))
    moved = rita.patch(GROUP_URL, {"owner": "green"}, format="json")
    assert moved.status_code == 200, moved.content
    assert moved.json()["owner"] == "green"


def test_another_teams_member_cannot_change_its_entities_features_or_services(
    store: dict[str, Any],
) -> None:
    bob = client_for(store["bob"])

    entity = bob.patch("/api/v1/features/entities/customer/", {"description": "x"}, format="json")
    feature = bob.patch(
        "/api/v1/features/features/customer_stats/spend/", {"tags": {"x": 1}}, format="json"
    )
    service = bob.patch("/api/v1/features/services/red-svc/", {"description": "x"}, format="json")
    service_gone = bob.delete("/api/v1/features/services/red-svc/")

    assert [r.status_code for r in (entity, feature, service, service_gone)] == [403] * 4
    assert Entity.objects.get(name="customer").description == ""
    assert store["group"].features.get(name="spend").tags == {}
    assert FeatureService.objects.get(name="red-svc").description == ""


def test_another_teams_source_cannot_feed_a_group(store: dict[str, Any]) -> None:
    bob = client_for(store["bob"])

    response = bob.post(
        "/api/v1/features/groups/",
        {
            "name": "copy",
            "entity": "customer",
            "features": [{"name": "spend", "dtype": "float64"}],
            "transformation_sql": "SELECT * FROM src",
            "transformation_sources": ["red-src"],
        },
        format="json",
    )

    assert response.status_code == 403
    assert "red-src" in response.json()["detail"]
    assert not FeatureGroup.objects.filter(name="copy").exists()


def test_another_teams_values_need_a_grant_and_a_grant_only_reads(
    store: dict[str, Any],
) -> None:
    bob = client_for(store["bob"])
    online = {"features": ["customer_stats:spend"], "entities": {"customer_id": [1]}}
    training = {
        "features": ["customer_stats:spend"],
        "entities": [{"customer_id": 1, "event_timestamp": "2025-02-01T00:00:00Z"}],
        "format": "csv",
    }
    service = {"name": "blue-svc", "features": ["customer_stats:spend"]}

    # without a grant: no values, and no service of blue's over them
    assert bob.post("/api/v1/features/online/", online, format="json").status_code == 403
    assert bob.post("/api/v1/features/training-sets/", training, format="json").status_code == 403
    assert bob.post("/api/v1/features/services/", service, format="json").status_code == 403

    # red grants blue a read
    grant_create(team=store["blue"], target=store["group"], user=store["rita"])

    read = bob.post("/api/v1/features/online/", online, format="json")
    assert read.status_code == 200
    assert read.json()["rows"][0]["spend"] == 1.0
    trained = bob.post("/api/v1/features/training-sets/", training, format="json")
    assert trained.status_code == 200
    assert b"spend" in trained.content
    assert bob.post("/api/v1/features/services/", service, format="json").status_code == 201
    # and still no write
    before = _snapshot(store["group"])
    assert bob.patch(GROUP_URL, {"description": "x"}, format="json").status_code == 403
    assert bob.post(f"{GROUP_URL}ingest", {"file": csv_file(ROWS)}).status_code == 403
    assert _snapshot(store["group"]) == before


def test_only_the_owning_team_grants(store: dict[str, Any]) -> None:
    from tenancy.services import PermissionDeniedError

    with pytest.raises(PermissionDeniedError):
        grant_create(team=store["blue"], target=store["group"], user=store["bob"])
    assert not Grant.objects.exists()


def test_a_group_without_a_team_is_admin_only(
    store: dict[str, Any], django_user_model: Any
) -> None:
    FeatureGroup.objects.filter(pk=store["group"].pk).update(owner=None)
    rita = client_for(store["rita"])
    online = {"features": ["customer_stats:spend"], "entities": {"customer_id": [1]}}

    refused = rita.patch(GROUP_URL, {"description": "x"}, format="json")
    unread = rita.post("/api/v1/features/online/", online, format="json")

    assert refused.status_code == 403
    assert "admin" in refused.json()["detail"]
    assert unread.status_code == 403
    admin = django_user_model.objects.create_superuser("root", password="pw-root-123")
    assert (
        client_for(admin).patch(GROUP_URL, {"description": "x"}, format="json").status_code == 200
    )


def test_a_user_without_a_team_cannot_create(django_user_model: Any) -> None:
    loner = client_for(person(django_user_model, "lou", None))

    response = loner.post(
        "/api/v1/features/entities/", {"name": "store", "join_keys": ["store_id"]}, format="json"
    )

    assert response.status_code == 403
    assert "no team" in response.json()["detail"]
    assert not Entity.objects.exists()


def test_training_set_page_needs_a_grant_catalog_pages_do_not(
    store: dict[str, Any], client: Any
) -> None:
    client.force_login(store["bob"])
    form = {
        "features": "customer_stats:spend",
        "format": "csv",
        "entity_file": csv_file("customer_id,event_timestamp\n1,2025-02-01T00:00:00Z\n"),
    }

    assert client.get("/features/").status_code == 200
    assert client.get("/features/groups/customer_stats/").status_code == 200
    assert client.post("/features/training-set/", form).status_code == 403

    grant_create(team=store["blue"], target=store["group"], user=store["rita"])
    form["entity_file"] = csv_file("customer_id,event_timestamp\n1,2025-02-01T00:00:00Z\n")
    allowed = client.post("/features/training-set/", form)
    assert allowed.status_code == 200
    assert b"spend" in allowed.content
