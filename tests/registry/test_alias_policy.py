"""An alias's traffic policy (canary, shadows, bounds) and its rollback, through the registry API:
what is accepted, what is refused (and then changes nothing), and what the audit trail records."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from registry.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel
from tests.conftest import client_for
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(registered: RegisteredModel, estimators: dict[str, Any]) -> list[ModelVersion]:
    """Five ready versions of `churn`; production on v1."""
    made = [
        ModelVersionFactory.create(model=registered, estimator=estimators["linear"])
        for _ in range(5)
    ]
    ModelAlias.objects.create(model=registered, alias="production", version=made[0])
    return made


@pytest.fixture
def team_client(member: Any) -> APIClient:
    return client_for(member)


URL = "/api/v1/models/churn/aliases/production/"


def _state() -> tuple[Any, ...]:
    link = ModelAlias.objects.get(alias="production")
    return (
        link.version.version,
        link.canary_version_id,
        link.canary_percent,
        link.routing_field,
        sorted(link.shadows.values_list("version", flat=True)),
        link.bounds,
        AliasChange.objects.count(),
    )


def test_a_policy_is_set_read_back_and_audited(team_client: APIClient, versions: list) -> None:
    body = {
        "version": 2,
        "canary": {"version": 3, "percent": 12.5, "routing_field": "customer_id"},
        "shadows": [5, 4],
        "bounds": {"max_error_rate": 0.05, "max_p99_ms": 40},
    }

    put = team_client.put(URL, body, format="json")
    got = team_client.get(URL)

    assert put.status_code == 200, put.json()
    expected = {
        "alias": "production",
        "version": 2,
        "canary": {"version": 3, "percent": 12.5, "routing_field": "customer_id"},
        "shadows": [4, 5],
        # Window and minimum count take their defaults.
        "bounds": {
            "max_error_rate": 0.05,
            "max_p99_ms": 40.0,
            "window_seconds": 60.0,
            "min_requests": 50.0,
        },
    }
    assert {k: v for k, v in put.json().items() if k != "updated_at"} == expected
    assert {k: v for k, v in got.json().items() if k != "updated_at"} == expected
    change = AliasChange.objects.latest("changed_at", "id")
    assert (change.from_version, change.to_version, change.kind) == (1, 2, "set")
    assert change.policy["canary"] == expected["canary"]
    assert change.policy["shadows"] == [4, 5]


def test_a_policy_change_on_the_same_version_is_its_own_audit_kind(
    team_client: APIClient, versions: list
) -> None:
    team_client.put(URL, {"version": 1, "shadows": [2]}, format="json")
    team_client.put(URL, {"version": 1, "shadows": [2]}, format="json")  # no change: no row

    kinds = list(AliasChange.objects.values_list("kind", "from_version", "to_version"))
    assert kinds == [("policy", 1, 1)]


def test_a_plain_move_keeps_the_policy_but_not_the_new_version_as_its_own_canary(
    team_client: APIClient, versions: list
) -> None:
    team_client.put(
        URL, {"version": 1, "canary": {"version": 2, "percent": 10}, "shadows": [3]}, format="json"
    )
    kept = team_client.put(URL, {"version": 4}, format="json").json()
    promoted = team_client.put(URL, {"version": 2}, format="json").json()
    shadow_promoted = team_client.put(URL, {"version": 3}, format="json").json()

    assert kept["canary"] == {"version": 2, "percent": 10.0}
    assert kept["shadows"] == [3]
    assert promoted["canary"] is None
    assert promoted["shadows"] == [3]
    # No policy left: the answer is DESIGN's plain {"alias", "version"}.
    assert shadow_promoted == {"alias": "production", "version": 3}


@pytest.mark.parametrize(
    ("policy", "status", "field"),
    [
        ({"canary": {"version": 1, "percent": 10}}, 400, "canary.version"),  # the alias's own
        ({"canary": {"version": 9, "percent": 10}}, 404, "canary.version"),
        ({"canary": {"version": 2, "percent": 0}}, 400, "canary.percent"),
        ({"canary": {"version": 2, "percent": 100.5}}, 400, "canary"),
        ({"canary": {"version": 2, "percent": "ten"}}, 400, "canary"),
        ({"canary": {"version": 2}}, 400, "canary"),
        ({"canary": {"version": 2, "percent": 5, "weight": 1}}, 400, "canary"),
        ({"canary": [2, 10]}, 400, "canary"),
        ({"shadows": [2, 2]}, 400, "shadows"),
        ({"shadows": [1]}, 400, "shadows"),
        ({"shadows": [2, 3, 4, 5]}, 400, "shadows"),
        ({"shadows": "2"}, 400, "shadows"),
        ({"shadows": [0]}, 400, "shadows"),
        ({"shadows": [9]}, 404, "shadows"),
        ({"canary": {"version": 2, "percent": 5}, "shadows": [2]}, 400, "shadows"),
        ({"bounds": {"max_error_rate": 0.1}}, 400, "bounds"),  # no canary to bound
        ({"canary": {"version": 2, "percent": 5}, "bounds": {"speed": 1}}, 400, "bounds"),
        ({"canary": {"version": 2, "percent": 5}, "bounds": {"max_error_rate": 2}}, 400, "bounds"),
        ({"canary": {"version": 2, "percent": 5}, "bounds": {"window_seconds": 30}}, 400, "bounds"),
        ({"canary": {"version": 2, "percent": 5}, "bounds": []}, 400, "bounds"),
    ],
)
def test_a_bad_policy_is_a_clear_error_and_changes_nothing(
    team_client: APIClient, versions: list, policy: dict, status: int, field: str
) -> None:
    before = _state()

    response = team_client.put(URL, {"version": 1, **policy}, format="json")

    assert response.status_code == status, response.json()
    body = response.json()
    assert body["detail"]
    assert body.get("field", "").startswith(field) or field in str(body), body
    assert _state() == before


def test_a_canary_or_shadow_that_is_not_ready_is_refused(
    team_client: APIClient, versions: list
) -> None:
    ModelVersion.objects.filter(version=3).update(status=ModelVersion.Status.QUARANTINED)
    before = _state()

    canary = team_client.put(
        URL, {"version": 1, "canary": {"version": 3, "percent": 5}}, format="json"
    )
    shadow = team_client.put(URL, {"version": 1, "shadows": [3]}, format="json")

    assert (canary.status_code, shadow.status_code) == (409, 409)
    assert "quarantined" in canary.json()["detail"]
    assert _state() == before


def test_rollback_returns_to_the_previous_version_and_ends_the_canary(
    team_client: APIClient, versions: list, member: Any
) -> None:
    team_client.put(URL, {"version": 2}, format="json")
    team_client.put(
        URL, {"version": 4, "canary": {"version": 5, "percent": 20}, "shadows": [3]}, format="json"
    )

    back = team_client.post(URL + "rollback")
    again = team_client.post(URL + "rollback")

    assert back.status_code == 200, back.json()
    assert back.json()["version"] == 2
    assert back.json()["canary"] is None
    assert back.json()["shadows"] == [3]
    # A rollback is a move like any other: rolling back again returns to v4.
    assert again.json()["version"] == 4
    latest = AliasChange.objects.latest("changed_at", "id")
    assert (latest.kind, latest.from_version, latest.to_version, latest.changed_by) == (
        "rollback",
        2,
        4,
        member,
    )


def test_rollback_refusals_change_nothing(
    team_client: APIClient, api_client: APIClient, versions: list, registered: RegisteredModel
) -> None:
    fresh = team_client.post(URL + "rollback")  # created directly: no earlier version
    missing = team_client.post("/api/v1/models/churn/aliases/staging/rollback")
    team_client.put(URL, {"version": 2}, format="json")
    outsider = api_client.post(URL + "rollback")  # a member of another team
    ModelVersion.objects.filter(version=1).update(status=ModelVersion.Status.REJECTED)
    gone = team_client.post(URL + "rollback")

    assert fresh.status_code == 409
    assert "no earlier version" in fresh.json()["detail"]
    assert missing.status_code == 404
    assert outsider.status_code == 403
    assert gone.status_code == 409
    assert "rejected" in gone.json()["detail"]
    assert ModelAlias.objects.get(alias="production").version.version == 2


def test_another_team_cannot_set_a_policy(api_client: APIClient, versions: list) -> None:
    before = _state()

    response = api_client.put(
        URL, {"version": 1, "canary": {"version": 2, "percent": 50}}, format="json"
    )

    assert response.status_code == 403
    assert _state() == before
