import io
import time
from pathlib import Path
from typing import Any

import pandas as pd

from jobs.models import Job


def submit(api_client: Any, path: Path, **fields: Any) -> Any:
    with path.open("rb") as handle:
        return api_client.post("/api/v1/jobs/", {"input": handle, **fields}, format="multipart")


def wait_finished(job_id: int, *, timeout: float = 90) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.2)
    raise AssertionError(
        f"job {job_id} not finished after {timeout}s: {Job.objects.get(pk=job_id)}"
    )


def read_output(api_client: Any, job_id: int, fmt: str = "csv") -> pd.DataFrame:
    response = api_client.get(f"/api/v1/jobs/{job_id}/output")
    assert response.status_code == 200, response.content
    data = b"".join(response.streaming_content)
    if fmt == "csv":
        return pd.read_csv(io.BytesIO(data), dtype={"customer_id": str, "branch": str})
    return pd.read_parquet(io.BytesIO(data))
