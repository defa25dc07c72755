"""Online store: materialisation, statuses, TTL on read, idempotence, the serving hook.

Runs on the DB store in the SQLite pass and on Redis in the PostgreSQL + Redis pass.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from features import tasks
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
