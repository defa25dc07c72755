"""Workers dying, sharing a job, and a job cancelled while chunks run."""

import time

import numpy as np
import pytest

from batch.models import BatchChunk
from jobs.models import Job
from tests.batch.conftest import FEATURES, make_frame
from tests.batch.helpers import read_output, submit, wait_finished
from tests.workers import wait_idle

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slow_chunks(settings):
    """Many small chunks, each predicted in tiny blocks, so a job lasts a few seconds."""
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 40
    settings.MLPLATFORM_BATCH_BLOCK_ROWS = 2
    settings.MLPLATFORM_BATCH_LEASE_SECONDS = 3


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def assert_every_row_once(api_client, job, frame, classifier):
    output = read_output(api_client, job.pk)
    assert len(output) == len(frame)
    assert output["customer_id"].tolist() == frame["customer_id"].tolist()
    assert output["prediction"].tolist() == classifier.predict(frame[FEATURES]).tolist()


def test_a_worker_killed_mid_job_loses_nothing_and_duplicates_nothing(
    celery_worker, start_worker, api_client, churn, classifier, write_input, slow_chunks
):
    # given a worker that will die, and a job of 60 chunks
    doomed = start_worker(name="doomed", concurrency=1)
    frame = make_frame(2400, seed=11)
    job_id = submit(
        api_client, write_input(frame), model="churn", id_columns="customer_id,branch"
    ).json()["id"]

    # when it is killed (SIGKILL, whole process group) while scoring a chunk
    wait_for(
        lambda: BatchChunk.objects.filter(
            batch_id=job_id, status="running", claimed_by__startswith="doomed@"
        ).exists()
    )
    doomed.kill()
    killed_chunks = set(
        BatchChunk.objects.filter(
            batch_id=job_id, status="running", claimed_by__startswith="doomed@"
        ).values_list("index", flat=True)
    )
    assert killed_chunks, "the worker was killed while it held a chunk"
    # and a new worker is started
    start_worker(name="fresh", concurrency=1)
    job = wait_finished(job_id, timeout=120)

    # then the job completes with every input row exactly once, in order
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert_every_row_once(api_client, job, frame, classifier)
    chunks = BatchChunk.objects.filter(batch_id=job_id)
    assert chunks.filter(status="done").count() == 60
    # the chunk the dead worker held was redone by another worker
    for chunk in chunks.filter(index__in=killed_chunks):
        assert chunk.attempts >= 2
        assert not chunk.claimed_by.startswith("doomed@")
    assert job.progress_done == 2400


def test_two_workers_share_one_job_and_produce_the_same_output(
    celery_worker, start_worker, api_client, churn, classifier, write_input, slow_chunks
):
    start_worker(name="second", concurrency=1)
    frame = make_frame(1200, seed=12)

    job_id = submit(
        api_client, write_input(frame), model="churn", id_columns="customer_id,branch"
    ).json()["id"]
    job = wait_finished(job_id, timeout=120)

    assert job.status == Job.Status.SUCCEEDED, job.error
    hosts = {
        name.split("@")[0]
        for name in BatchChunk.objects.filter(batch_id=job_id).values_list("claimed_by", flat=True)
    }
    assert hosts == {"session", "second"}
    assert_every_row_once(api_client, job, frame, classifier)


def test_cancel_mid_job_stops_the_queued_chunks(
    celery_worker, api_client, churn, write_input, slow_chunks
):
    frame = make_frame(4000, seed=13)
    job_id = submit(
        api_client, write_input(frame), model="churn", id_columns="customer_id,branch"
    ).json()["id"]
    wait_for(lambda: Job.objects.get(pk=job_id).progress_done >= 200)
    running = api_client.get(f"/api/v1/jobs/{job_id}/").json()
    assert running["status"] == "running"
    assert running["progress"]["rate"] > 0
    assert running["progress"]["eta_seconds"] is not None

    # when the user cancels it
    response = api_client.post(f"/api/v1/jobs/{job_id}/cancel")

    # then it is cancelled, no chunk keeps running, and no output appears
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    wait_for(
        lambda: not BatchChunk.objects.filter(batch_id=job_id, status="running").exists(),
        timeout=30,
    )
    done_then = Job.objects.get(pk=job_id).progress_done
    time.sleep(1.5)
    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.CANCELLED
    assert job.progress_done == done_then < 4000
    assert not job.output
    assert not BatchChunk.objects.filter(batch_id=job_id, status="pending").exists()
    assert BatchChunk.objects.filter(batch_id=job_id, status="cancelled").exists()
    assert api_client.get(f"/api/v1/jobs/{job_id}/output").status_code == 404
    # Chunk messages still queued for the cancelled job are consumed (each returns at once):
    # the worker must have taken and finished them all before the test database is flushed
    # under it (a flush beside a running task once deadlocked on PostgreSQL).
    wait_idle()


def test_probabilities_sum_to_one_over_a_many_chunk_parquet_job(
    celery_worker, api_client, churn, write_input, settings
):
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 100
    frame = make_frame(1000, seed=14)
    job_id = submit(
        api_client,
        write_input(frame, "parquet"),
        model="churn",
        outputs="predict_proba",
        id_columns="customer_id,branch",
        format="parquet",
    ).json()["id"]

    job = wait_finished(job_id)

    assert job.status == Job.Status.SUCCEEDED, job.error
    output = read_output(api_client, job_id, "parquet")
    assert "prediction" not in output.columns
    probabilities = output[[c for c in output.columns if c.startswith("proba_")]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
