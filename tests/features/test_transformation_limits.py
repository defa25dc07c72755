"""A transformation that would spill past its temporary-space cap fails saying which limit."""

from typing import Any

import pytest

from features import services
from features.models import OfflinePartition
from jobs.models import Job
from tests.features.conftest import csv_file, make_group

pytestmark = pytest.mark.django_db

# A window over three million rows sorts far more than 30 MB of memory holds: it must spill.
SPILLING_SQL = (
    "SELECT customer_id, ts AS event_timestamp, n FROM clicks_raw WHERE (SELECT max(r) FROM "
    "(SELECT row_number() OVER (ORDER BY md5(i::varchar)) r FROM range(3000000) t(i))) > 0"
)


def test_a_query_past_the_temporary_space_cap_fails_the_job_naming_the_limit(
    api_client: Any, customer: dict[str, Any], settings: Any
):
    # Given little memory and a 2 MB spill cap
    settings.MLPLATFORM_DUCKDB_MEMORY_LIMIT = "30MB"
    settings.MLPLATFORM_DUCKDB_MAX_TEMP_SIZE = "2MB"
    api_client.post(
        "/api/v1/features/sources/",
        {"name": "clicks-raw", "file": csv_file("customer_id,ts,n\n1,2025-01-01T00:00:00Z,3\n")},
        format="multipart",
    )
    make_group(
        api_client,
        name="clicks",
        features=[{"name": "n", "dtype": "int64"}],
        transformation_sql=SPILLING_SQL,
        transformation_sources=["clicks-raw"],
    )
    job_id = api_client.post("/api/v1/features/groups/clicks/run").json()["job"]

    # When the job runs (the body of the worker's task)
    services.transformation_run_job(job_id=job_id)

    # Then it failed naming the setting, and stored nothing
    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.FAILED
    assert "temporary disk space" in job.error
    assert "MLPLATFORM_DUCKDB_MAX_TEMP_SIZE=2MB" in job.error
    assert not OfflinePartition.objects.filter(group__name="clicks").exists()
