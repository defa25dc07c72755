"""Online store: materialisation, statuses, TTL on read, idempotence, the serving hook.

Runs on the DB store in the SQLite pass and on Redis in the PostgreSQL + Redis pass.
"""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings

from features import tasks
from tests.conftest import api_key_for
from tests.features.conftest import ingest, make_group

pytestmark = pytest.mark.django_db


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


NOW = datetime.now(tz=UTC)


@pytest.fixture
def groups(api_client: Any, customer: dict[str, Any]) -> None:
    make_group(
        api_client,
        name="activity",
        features=[{"name": "clicks", "dtype": "int64"}, {"name": "country", "dtype": "string"}],
        ttl_seconds=7 * 86400,
        availability={"column": "available_at"},
    )
    make_group(
        api_client,
        name="legacy",
        features=[{"name": "tenure", "dtype": "float64"}],
        ttl_seconds=86400,
        availability={"lag_seconds": 60},
    )
    activity = [
        # customer 1: an older and a newer value; the newer one must win
        {"customer_id": 1, "event_timestamp": _iso(NOW - timedelta(days=3)),
         "available_at": _iso(NOW - timedelta(days=3)), "clicks": 5, "country": "FR"},
        {"customer_id": 1, "event_timestamp": _iso(NOW - timedelta(days=1)),
         "available_at": _iso(NOW - timedelta(hours=20)), "clicks": 9, "country": "DE"},
        # known only tomorrow: must not be served today
        {"customer_id": 1, "event_timestamp": _iso(NOW - timedelta(hours=1)),
         "available_at": _iso(NOW + timedelta(days=1)), "clicks": 99, "country": "XX"},
        # customer 2: too old for the 7-day TTL
        {"customer_id": 2, "event_timestamp": _iso(NOW - timedelta(days=30)),
         "available_at": _iso(NOW - timedelta(days=30)), "clicks": 1, "country": "IT"},
    ]  # fmt: skip
    assert ingest(api_client, "activity", activity).status_code == 201
    legacy = [{"customer_id": 1, "event_timestamp": _iso(NOW - timedelta(hours=2)), "tenure": 3.5}]
    assert ingest(api_client, "legacy", legacy).status_code == 201


def _materialise(api_client: Any, group: str) -> dict[str, Any]:
    response = api_client.post(f"/api/v1/features/groups/{group}/materialize")
    assert response.status_code == 202, response.content
    job_id = response.json()["job"]
    # The worker path is covered in test_jobs_e2e; here the task body runs in-process.
    tasks.materialisation_run(job_id)
    job = api_client.get(f"/api/v1/jobs/{job_id}/").json()
    assert job["status"] == "succeeded", job
    return job


def _online(api_client: Any, **body: Any) -> dict[str, Any]:
    response = api_client.post("/api/v1/features/online/", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_online_reads_report_present_expired_and_missing(api_client, groups):
    # Given both groups materialised
    _materialise(api_client, "activity")
    _materialise(api_client, "legacy")
    # When customers 1 (fresh), 2 (expired) and 3 (unknown) are looked up
    body = _online(
        api_client,
        features=["activity:clicks", "activity:country", "legacy:tenure"],
        entities={"customer_id": [1, 2, 3]},
    )
    # Then values and statuses are row-major, in request order
    assert body["rows"] == [
        {"customer_id": 1, "clicks": 9, "country": "DE", "tenure": 3.5},
        {"customer_id": 2, "clicks": None, "country": None, "tenure": None},
        {"customer_id": 3, "clicks": None, "country": None, "tenure": None},
    ]
    assert body["status"] == [
        {"clicks": "present", "country": "present", "tenure": "present"},
        {"clicks": "expired", "country": "expired", "tenure": "missing"},
        {"clicks": "missing", "country": "missing", "tenure": "missing"},
    ]


def test_materialising_twice_changes_nothing(api_client, groups):
    first = _materialise(api_client, "activity")
    before = _online(api_client, features=["activity:clicks"], entities={"customer_id": [1, 2]})
    # When materialised again with no new data
    second = _materialise(api_client, "activity")
    # Then nothing is written and reads are identical
    assert first["result"]["written"] == 2
    assert second["result"]["written"] == 0
    after = _online(api_client, features=["activity:clicks"], entities={"customer_id": [1, 2]})
    assert after == before


def test_incremental_materialisation_picks_up_only_newer_values(api_client, groups):
    _materialise(api_client, "activity")
    # Given a late file with an older value for customer 1 and a new customer 4
    late = [
        {"customer_id": 1, "event_timestamp": _iso(NOW - timedelta(days=2)),
         "available_at": _iso(NOW - timedelta(minutes=5)), "clicks": 7, "country": "ES"},
        {"customer_id": 4, "event_timestamp": _iso(NOW - timedelta(hours=3)),
         "available_at": _iso(NOW - timedelta(hours=3)), "clicks": 4, "country": "PT"},
    ]  # fmt: skip
    ingest(api_client, "activity", late)
    # When materialised again
    job = _materialise(api_client, "activity")
    # Then only customer 4 changes; customer 1 keeps its newer value
    assert job["result"] == {"candidates": 2, "written": 1}
    body = _online(api_client, features=["activity:clicks"], entities={"customer_id": [1, 4]})
    assert [row["clicks"] for row in body["rows"]] == [9, 4]


def test_online_rows_hook_for_serving(api_client, groups):
    from features.models import FeatureService
    from features.online import online_rows

    _materialise(api_client, "activity")
    api_client.post(
        "/api/v1/features/services/",
        {"name": "churn", "features": ["activity:clicks", "activity:country"]},
        format="json",
    )
    rows = online_rows(
        feature_service=FeatureService.objects.get(name="churn"),
        entity_rows=[{"customer_id": 2}, {"customer_id": "1"}, {"customer_id": 5}],
    )
    assert rows == [
        {"clicks": None, "country": None},
        {"clicks": 9, "country": "DE"},
        {"clicks": None, "country": None},
    ]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"features": ["activity:clicks"], "entities": {"user": [1]}}, "customer_id"),
        ({"features": ["activity:nope"], "entities": {"customer_id": [1]}}, "activity:nope"),
        ({"feature_service": "ghost", "entities": {"customer_id": [1]}}, "ghost"),
        ({"features": ["activity:clicks"], "entities": {"customer_id": []}}, "entities"),
        (
            {"features": ["activity:clicks"], "entities": {"customer_id": [1], "x": [1, 2]}},
            "same length",
        ),
    ],
)
def test_bad_online_requests_are_400(api_client, groups, body, needle):
    response = api_client.post("/api/v1/features/online/", body, format="json")
    assert response.status_code == 400, response.content
    assert needle in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"features": ["activity:clicks"], "entities": [1]}, "entities"),
        ({"features": ["activity:clicks"], "entities": {"customer_id": 1}}, "entities"),
        ({"features": ["activity:clicks"]}, "entities"),
        ({"features": "activity:clicks", "entities": {"customer_id": [1]}}, "features"),
        ({"features": [""], "entities": {"customer_id": [1]}}, "features"),
        ({"feature_service": None, "entities": {"customer_id": [1]}}, "feature_service"),
        ({"feature_service": "a\x00b", "entities": {"customer_id": [1]}}, "feature_service"),
    ],
)
def test_malformed_online_bodies_are_400_naming_the_field(api_client, groups, body, field):
    response = api_client.post("/api/v1/features/online/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith(f"{field}:")
    assert field in response.json()["errors"]


def test_online_references_are_read_as_the_serializer_reads_them(api_client, groups):
    # Given references with surrounding spaces (trimmed) and a numeric entity key
    _materialise(api_client, "activity")
    body = _online(
        api_client,
        features=[" activity:clicks ", "activity:country"],
        entities={"customer_id": ["1"]},
    )
    # Then they resolve as if written plainly
    assert body["rows"] == [{"customer_id": "1", "clicks": 9, "country": "DE"}]


def test_online_reads_negotiate_the_response_format(api_client, groups):
    url = "/api/v1/features/online/"
    body = {"features": ["activity:clicks"], "entities": {"customer_id": [1]}}
    # JSON whatever way a client asks for it
    for accept in (None, "*/*", "application/json", "application/json; indent=2"):
        headers = {"HTTP_ACCEPT": accept} if accept else {}
        response = api_client.post(url, body, format="json", **headers)
        assert response.status_code == 200, (accept, response.content)
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["status"] == [{"clicks": "missing"}]
    # A format nobody serves is still refused, and a browser still gets the browsable API
    assert (
        api_client.post(url, body, format="json", HTTP_ACCEPT="application/xml").status_code == 406
    )
    html = api_client.post(url, body, format="json", HTTP_ACCEPT="text/html")
    assert html.status_code == 200
    assert html["Content-Type"].startswith("text/html")


def _churn_service_read_once(api_client: Any) -> None:
    """Service `churn` = activity:clicks, read once (its resolved features are now cached)."""
    _materialise(api_client, "activity")
    api_client.post(
        "/api/v1/features/services/",
        {"name": "churn", "features": ["activity:clicks"]},
        format="json",
    )
    first = _online(api_client, feature_service="churn", entities={"customer_id": [1]})
    assert first["rows"] == [{"customer_id": 1, "clicks": 9}]


def test_a_catalog_change_in_this_process_is_seen_by_the_next_read(api_client, groups):
    # Given a service read once (its resolved features are now cached)
    _churn_service_read_once(api_client)
    # When the service is changed through the API
    response = api_client.patch(
        "/api/v1/features/services/churn/", {"features": ["activity:country"]}, format="json"
    )
    assert response.status_code == 200, response.content
    # Then the very next read uses the new feature list
    second = _online(api_client, feature_service="churn", entities={"customer_id": [1]})
    assert second["rows"] == [{"customer_id": 1, "country": "DE"}]


@pytest.mark.django_db(transaction=True)
def test_a_catalog_change_in_another_process_is_seen_within_the_cache_bound(
    api_client, groups, settings
):
    # Given a service read once here, with a short catalog cache bound
    settings.MLPLATFORM_FEATURE_CATALOG_TTL_SECONDS = 0.5
    _churn_service_read_once(api_client)
    # When another process (another web worker) changes the service: no signal reaches us
    change = (
        "from features import selectors, services; services.service_update("
        "service=selectors.service_get(name='churn'), features=['activity:country'])"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mlplatform.settings.test",
        "MLPLATFORM_USE_TEST_DATABASE": "1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", change],
        cwd=django_settings.BASE_DIR,
        env=env,
        check=True,
        timeout=120,
    )
    # Then once the bound has passed, reads here use the new feature list
    time.sleep(0.6)
    second = _online(api_client, feature_service="churn", entities={"customer_id": [1]})
    assert second["rows"] == [{"customer_id": 1, "country": "DE"}]


@pytest.mark.django_db(transaction=True)
def test_online_reads_over_http_see_every_materialisation(live_server, api_client, groups, user):
    # Given a server answering online reads over HTTP, read repeatedly (later requests find the
    # token and the catalog cached)
    _materialise(api_client, "activity")
    session = requests.Session()
    headers = {"Authorization": f"Token {api_key_for(user)}"}

    def clicks() -> list[Any]:
        response = session.post(
            f"{live_server.url}/api/v1/features/online/",
            json={"features": ["activity:clicks"], "entities": {"customer_id": [1, 4]}},
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return [row["clicks"] for row in response.json()["rows"]]

    assert [clicks() for _ in range(3)] == [[9, None]] * 3
    # When newer values are ingested and materialised
    newer = [
        {"customer_id": 1, "event_timestamp": _iso(NOW - timedelta(hours=2)),
         "available_at": _iso(NOW - timedelta(hours=1)), "clicks": 11, "country": "DE"},
        {"customer_id": 4, "event_timestamp": _iso(NOW - timedelta(hours=3)),
         "available_at": _iso(NOW - timedelta(hours=3)), "clicks": 4, "country": "PT"},
    ]  # fmt: skip
    assert ingest(api_client, "activity", newer).status_code == 201
    _materialise(api_client, "activity")
    # Then the very next reads return them
    assert [clicks() for _ in range(3)] == [[11, 4]] * 3


def test_deleting_a_group_removes_its_online_values(
    api_client, groups, django_capture_on_commit_callbacks
):
    from features import online
    from features.models import FeatureGroup

    _materialise(api_client, "activity")
    group = FeatureGroup.objects.get(name="activity")
    stored = online.store().count(group)

    with django_capture_on_commit_callbacks(execute=True):
        deleted = api_client.delete("/api/v1/features/groups/activity/")

    assert stored > 0
    assert deleted.status_code == 204
    assert online.store().count(group) == 0  # the Redis store has no cascade to rely on
