"""Transformations: DuckDB SQL over sources, sandboxed, appending only new rows."""

import json
from typing import Any

import pytest

from features import tasks
from tests.features.conftest import csv_file, make_group

pytestmark = pytest.mark.django_db

TRANSACTIONS = (
    "customer_id,ts,amount\n"
    "1,2025-01-01T00:00:00Z,10\n"
    "1,2025-01-05T00:00:00Z,20\n"
    "1,2025-01-20T00:00:00Z,60\n"
    "2,2025-01-02T00:00:00Z,5\n"
)
ROLLING = """
SELECT customer_id, ts AS event_timestamp,
       avg(amount) OVER (PARTITION BY customer_id ORDER BY ts
                         RANGE BETWEEN INTERVAL 7 DAYS PRECEDING AND CURRENT ROW) AS avg_7d
FROM transactions
"""


@pytest.fixture
def source(api_client: Any, customer: dict[str, Any]) -> dict[str, Any]:
    response = api_client.post(
        "/api/v1/features/sources/",
        {"name": "transactions", "kind": "file", "file": csv_file(TRANSACTIONS)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return response.json()


def _run(api_client: Any, group: str) -> dict[str, Any]:
    response = api_client.post(f"/api/v1/features/groups/{group}/run")
    assert response.status_code == 202, response.content
    job_id = response.json()["job"]
    tasks.transformation_run(job_id)  # in-process here; on the worker in test_jobs_e2e
    return api_client.get(f"/api/v1/jobs/{job_id}/").json()


def test_rolling_average_transformation_appends_only_new_rows(api_client, source):
    make_group(
        api_client,
        name="spend_7d",
        features=[{"name": "avg_7d", "dtype": "float64"}],
        transformation_sql=ROLLING,
        transformation_sources=["transactions"],
        availability={"lag_seconds": 3600},
    )
    first = _run(api_client, "spend_7d")
    assert first["status"] == "succeeded", first
    assert first["result"] == {"produced": 4, "appended": 4}
    response = api_client.post(
        "/api/v1/features/training-sets/",
        {
            "features": ["spend_7d:avg_7d"],
            "entities": [
                {"customer_id": 1, "event_timestamp": "2025-01-05T00:30:00Z"},
                {"customer_id": 1, "event_timestamp": "2025-01-05T01:00:00Z"},
                {"customer_id": 1, "event_timestamp": "2025-01-21T00:00:00Z"},
            ],
            "format": "csv",
        },
        format="json",
    )
    lines = response.content.decode().strip().splitlines()
    # 00:30: the row of the 5th is not available yet (lag 1 h) -> the value of the 1st
    assert [line.rsplit(",", 1)[-1] for line in lines[1:]] == ["10.0", "15.0", "60.0"]
    # A rerun over unchanged sources adds nothing
    second = _run(api_client, "spend_7d")
    assert second["result"] == {"produced": 4, "appended": 0}
    group = api_client.get("/api/v1/features/groups/spend_7d/").json()
    assert group["summary"]["rows"] == 4
    assert group["features"][0]["statistics"]["count"] == 4


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "disabled"),
        ("SELECT 1 AS customer_id, now() AS event_timestamp, 1.0 AS avg_7d "
         "FROM read_parquet('/etc/hosts')", "disabled"),
        ("SELECT customer_id, ts AS event_timestamp FROM transactions", "avg_7d"),
        ("SELECT nonsense FROM nowhere", "nowhere"),
    ],
)  # fmt: skip
def test_transformation_cannot_escape_its_inputs(api_client, source, sql, needle):
    make_group(
        api_client,
        name="escape",
        features=[{"name": "avg_7d", "dtype": "float64"}],
        transformation_sql=sql,
        transformation_sources=["transactions"],
    )
    job = _run(api_client, "escape")
    assert job["status"] == "failed"
    assert needle in job["error"]
    assert api_client.get("/api/v1/features/groups/escape/").json()["summary"]["rows"] == 0


def test_schedule_creates_and_removes_a_beat_task(api_client, source, user):
    from django.contrib.auth.models import Group
    from django_celery_beat.models import PeriodicTask

    # the creator's team owns the group, so its scheduled runs show among the team's jobs
    user.groups.add(Group.objects.create(name="growth"))

    make_group(
        api_client,
        name="nightly_spend",
        features=[{"name": "avg_7d", "dtype": "float64"}],
        transformation_sql=ROLLING,
        transformation_sources=["transactions"],
        schedule="0 3 * * *",
    )
    task = PeriodicTask.objects.get(task="features.tasks.transformation_scheduled")
    assert (task.crontab.minute, task.crontab.hour) == ("0", "3")
    # The scheduled entry point records a job like a manual run
    tasks.transformation_scheduled(*json.loads(task.args))
    jobs = api_client.get("/api/v1/jobs/?kind=transformation").json()["results"]
    assert jobs[0]["status"] == "succeeded"
    response = api_client.patch(
        "/api/v1/features/groups/nightly_spend/", {"schedule": ""}, format="json"
    )
    assert response.status_code == 200
    assert not PeriodicTask.objects.filter(task="features.tasks.transformation_scheduled").exists()
