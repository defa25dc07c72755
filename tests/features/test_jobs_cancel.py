"""Feature jobs that can be stopped and leave nothing: a cancelled transformation's query is
interrupted, a query past its time limit fails the job, and wide ingests run as jobs that a
retried upload never duplicates."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django_celery_results.models import TaskResult

from features.models import Feature, FeatureGroup, OfflinePartition
from tests.features.conftest import csv_file, ingest, make_group
from tests.workers import wait_idle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

# A scalar subquery DuckDB cannot shortcut: counting 10^13 rows would take hours.
SLOW_SQL = (
    "SELECT customer_id, ts AS event_timestamp, n FROM clicks_raw "
    "WHERE (SELECT count(*) FROM range(10000000000000)) > 0"
)


@pytest.fixture
def worker(celery_worker: Any) -> Iterator[Any]:
    """The session's worker, idle again before the test's database is flushed under it."""
    yield celery_worker
    wait_idle()


def _wait(api_client: Any, job_id: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api_client.get(f"/api/v1/jobs/{job_id}/").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def _wait_for(predicate: Any, *, timeout: float) -> float:
    """Seconds until `predicate()` held; fails after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _stored(group: str) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "features" / "offline" / group
    created = FeatureGroup.objects.get(name=group).created_at.timestamp()
    return [p for p in root.rglob("*") if p.is_file() and p.stat().st_mtime >= created]


def _task_finished(name: str) -> bool:
    return TaskResult.objects.filter(task_name=name, status__in=["SUCCESS", "FAILURE"]).exists()


@pytest.fixture
def clicks_source(api_client: Any, customer: dict[str, Any]) -> None:
    response = api_client.post(
        "/api/v1/features/sources/",
        {
            "name": "clicks-raw",
            "file": csv_file(
                "customer_id,ts,n\n1,2025-01-01T00:00:00Z,3\n2,2025-01-02T00:00:00Z,4\n"
            ),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content


def test_cancelling_a_transformation_interrupts_its_query_and_writes_nothing(
    api_client, clicks_source, worker
):
    # Given a transformation whose query runs for hours, running on the worker
    make_group(
        api_client,
        name="clicks",
        features=[{"name": "n", "dtype": "int64"}],
        transformation_sql=SLOW_SQL,
        transformation_sources=["clicks-raw"],
    )
    job_id = api_client.post("/api/v1/features/groups/clicks/run").json()["job"]
    _wait_for(
        lambda: api_client.get(f"/api/v1/jobs/{job_id}/").json()["status"] == "running",
        timeout=60,
    )
    time.sleep(1.5)  # well inside the query

    # When the user cancels it
    response = api_client.post(f"/api/v1/jobs/{job_id}/cancel")

    # Then it says cancelled, the worker's task ends within seconds, and nothing was written
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    seconds = _wait_for(lambda: _task_finished("features.tasks.transformation_run"), timeout=15)
    assert seconds < 10
    job = api_client.get(f"/api/v1/jobs/{job_id}/").json()
    assert job["status"] == "cancelled"
    assert job["error"] == ""
    assert not OfflinePartition.objects.filter(group__name="clicks").exists()
    assert not _stored("clicks")
    assert Feature.objects.get(group__name="clicks", name="n").statistics in ({}, None)
    # and the query's own spill folder went with it
    assert not list((Path(settings.VAR_DIR) / "duckdb-tmp").glob(f"transform-{job_id}-*"))


def test_a_query_past_the_time_limit_fails_the_job_saying_so(
    api_client, clicks_source, worker, settings
):
    # Given a one-second limit per query (copied into the job when it is queued)
    settings.MLPLATFORM_QUERY_TIMEOUT_SECONDS = 1
    make_group(
        api_client,
        name="clicks",
        features=[{"name": "n", "dtype": "int64"}],
        transformation_sql=SLOW_SQL,
        transformation_sources=["clicks-raw"],
    )

    # When the transformation runs
    started = time.monotonic()
    job = _wait(api_client, api_client.post("/api/v1/features/groups/clicks/run").json()["job"])

    # Then it fails within seconds with a message naming the limit, and wrote nothing
    assert time.monotonic() - started < 30
    assert job["status"] == "failed"
    assert "ran longer than 1 s" in job["error"]
    assert "MLPLATFORM_QUERY_TIMEOUT_SECONDS" in job["error"]
    assert not OfflinePartition.objects.filter(group__name="clicks").exists()
    assert not _stored("clicks")


def test_a_transformation_that_completes_commits_its_rows_and_statistics(
    api_client, clicks_source, worker
):
    make_group(
        api_client,
        name="clicks",
        features=[{"name": "n", "dtype": "int64"}],
        transformation_sql="SELECT customer_id, ts AS event_timestamp, n FROM clicks_raw",
        transformation_sources=["clicks-raw"],
    )

    job = _wait(api_client, api_client.post("/api/v1/features/groups/clicks/run").json()["job"])

    assert job["status"] == "succeeded", job
    assert job["result"] == {"produced": 2, "appended": 2}
    partition = OfflinePartition.objects.get(group__name="clicks")
    assert "/_pending/" not in partition.path
    assert [p.name for p in _stored("clicks")] == [Path(partition.path).name]
    assert Feature.objects.get(group__name="clicks", name="n").statistics["count"] == 2


def test_a_ten_thousand_feature_ingest_is_a_job_and_a_retry_adds_nothing(
    api_client, customer, worker
):
    # Given a group of 10,000 features and a file of 20 rows for it
    width = 10_000
    make_group(
        api_client,
        name="wide",
        features=[{"name": f"f{i}", "dtype": "float64"} for i in range(width)],
    )
    frame = pd.DataFrame(
        np.random.default_rng(0).normal(size=(20, width)).round(3),
        columns=[f"f{i}" for i in range(width)],
    )
    frame.insert(0, "event_timestamp", "2025-01-01T00:00:00Z")
    frame.insert(0, "customer_id", range(20))
    body = frame.to_csv(index=False)

    # When it is ingested: too wide to answer inline, so a job the worker runs
    response = ingest(api_client, "wide", body)
    assert response.status_code == 202, response.content
    job_id = response.json()["job"]
    job = _wait(api_client, job_id, timeout=240)

    # Then every row and every feature's statistics are stored, in one partition
    assert job["status"] == "succeeded", job
    assert job["result"] == {"rows": 20}
    assert OfflinePartition.objects.filter(group__name="wide").count() == 1
    last = Feature.objects.get(group__name="wide", name=f"f{width - 1}").statistics
    assert last["count"] == 20
    assert last["min"] == frame[f"f{width - 1}"].min()
    assert sum(last["histogram"]["counts"]) == 20

    # And the same upload sent again (a client retrying after a timeout) answers with the
    # first job and stores nothing new
    again = ingest(api_client, "wide", body)
    assert again.status_code == 202, again.content
    assert again.json() == {"job": job_id}
    group = api_client.get("/api/v1/features/groups/wide/").json()
    assert group["summary"]["rows"] == 20
    assert group["summary"]["partitions"] == 1
