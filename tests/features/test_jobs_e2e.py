"""Ingestion, transformation, materialisation and large training sets on a real worker."""

import io
import time
from typing import Any

import pandas as pd
import pytest

from tests.features.conftest import csv_file, ingest, make_group

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def _wait(api_client: Any, job_id: int, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api_client.get(f"/api/v1/jobs/{job_id}/").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_feature_pipeline_runs_as_jobs_on_the_worker(api_client, customer, celery_worker, settings):
    # Given a source and a transformation group, and an uploaded group with a tiny inline limit
    settings.MLPLATFORM_INLINE_INGEST_BYTES = 16
    settings.MLPLATFORM_INLINE_TRAINING_SET_ROWS = 2
    source = api_client.post(
        "/api/v1/features/sources/",
        {
            "name": "clicks-raw",
            "file": csv_file(
                "customer_id,ts,n\n1,2025-01-01T00:00:00Z,3\n2,2025-01-02T00:00:00Z,4\n"
            ),
        },
        format="multipart",
    )
    assert source.status_code == 201, source.content
    make_group(
        api_client,
        name="clicks",
        features=[{"name": "n", "dtype": "int64"}],
        transformation_sql="SELECT customer_id, ts AS event_timestamp, n FROM clicks_raw",
        transformation_sources=["clicks-raw"],
    )
    make_group(api_client, name="spend", features=[{"name": "total", "dtype": "float64"}])

    # When a large file is ingested: a job the worker runs
    response = ingest(
        api_client,
        "spend",
        [
            {"customer_id": 1, "event_timestamp": "2025-01-01T00:00:00Z", "total": 1.5},
            {"customer_id": 2, "event_timestamp": "2025-01-01T00:00:00Z", "total": 2.5},
        ],
    )
    assert response.status_code == 202, response.content
    job = _wait(api_client, response.json()["job"])
    assert job["status"] == "succeeded", job
    assert job["result"] == {"rows": 2}
    assert job["progress"]["done"] == 2

    # And the transformation runs on the worker
    job = _wait(api_client, api_client.post("/api/v1/features/groups/clicks/run").json()["job"])
    assert job["status"] == "succeeded", job
    assert job["result"]["appended"] == 2

    # And materialisation runs on the worker
    job = _wait(
        api_client, api_client.post("/api/v1/features/groups/spend/materialize").json()["job"]
    )
    assert job["status"] == "succeeded", job
    job = _wait(
        api_client, api_client.post("/api/v1/features/groups/clicks/materialize").json()["job"]
    )
    assert job["status"] == "succeeded", job
    online = api_client.post(
        "/api/v1/features/online/",
        {"features": ["spend:total", "clicks:n"], "entities": {"customer_id": [2, 1]}},
        format="json",
    ).json()
    assert online["rows"] == [
        {"customer_id": 2, "total": 2.5, "n": 4},
        {"customer_id": 1, "total": 1.5, "n": 3},
    ]

    # And a training set above the inline row count is a job with a downloadable output
    response = api_client.post(
        "/api/v1/features/training-sets/",
        {
            "features": ["clicks:n"],
            "entities": [
                {"customer_id": 2, "event_timestamp": "2025-02-01T00:00:00Z"},
                {"customer_id": 1, "event_timestamp": "2025-02-01T00:00:00Z"},
                {"customer_id": 1, "event_timestamp": "2024-02-01T00:00:00Z"},
            ],
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    job = _wait(api_client, response.json()["job"])
    assert job["status"] == "succeeded", job
    output = api_client.get(f"/api/v1/jobs/{job['id']}/output")
    assert output.status_code == 200
    frame = pd.read_parquet(io.BytesIO(b"".join(output.streaming_content)))
    # The transformation ran "now", so its rows are not available in 2025: point-in-time nulls
    assert frame["customer_id"].tolist() == [2, 1, 1]
    assert frame["n"].isna().all()
