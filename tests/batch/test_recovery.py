"""The sweeper and the command line, on the session's real worker."""

from datetime import timedelta

import pandas as pd
import pytest
from django.core.management import call_command
from django.utils import timezone

from batch import plan
from batch.models import BatchChunk
from batch.tasks import batch_sweep
from jobs.models import Job
from tests.batch.conftest import FEATURES, make_frame
from tests.batch.helpers import submit


@pytest.mark.django_db
def test_a_chunk_that_keeps_killing_its_worker_fails_the_job(
    api_client, churn, write_input, settings
):
    # given a planned job whose chunk 1 was claimed the maximum number of times and never finished
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 10
    job_id = submit(
        api_client, write_input(make_frame(30)), model="churn", id_columns="customer_id,branch"
    ).json()["id"]
    plan.batch_job_plan(job_id=job_id)
    BatchChunk.objects.filter(batch_id=job_id, index=1).update(
        status="running",
        attempts=settings.MLPLATFORM_BATCH_MAX_ATTEMPTS,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )

    # when the periodic sweeper runs
    batch_sweep()

    # then the job failed saying so, instead of looping
    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.FAILED
    assert "keeps killing its worker" in job.error
    assert "Chunk 1" in job.error


@pytest.mark.django_db(transaction=True)
def test_the_score_command_waits_and_writes_the_output(
    celery_worker, churn, classifier, write_input, tmp_path, capsys, settings
):
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 50
    frame = make_frame(120, seed=21)
    out = tmp_path / "scored.csv"

    call_command(
        "score",
        "churn",
        str(write_input(frame)),
        "--alias",
        "production",
        "--id-columns",
        "customer_id,branch",
        "--wait",
        "--output",
        str(out),
    )

    scored = pd.read_csv(out, dtype={"customer_id": str})
    assert scored["customer_id"].tolist() == frame["customer_id"].tolist()
    assert scored["prediction"].tolist() == classifier.predict(frame[FEATURES]).tolist()
    assert "succeeded" in capsys.readouterr().out
