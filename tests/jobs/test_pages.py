"""The jobs pages: list of every kind, detail with progress, cancel."""

import pytest

from jobs import services
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def test_pages_need_a_login(client):
    response = client.get("/jobs/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_list_shows_jobs_of_every_kind_and_filters_them(logged_in, user):
    services.job_create(
        kind=Job.Kind.INGESTION, description="Ingest customer_stats", total=10, submitted_by=user
    )
    scoring = services.job_create(
        kind=Job.Kind.BATCH_SCORING, description="Score march.csv", submitted_by=user
    )
    services.job_start(job_id=scoring.pk, total=100)
    services.job_advance(job_id=scoring.pk, done=40)

    everything = logged_in.get("/jobs/").content.decode()
    only_scoring = logged_in.get("/jobs/", {"kind": "batch_scoring"}).content.decode()
    only_queued = logged_in.get("/jobs/", {"status": "queued"}).content.decode()

    assert "Ingest customer_stats" in everything
    assert 'hx-trigger="every 2s"' in everything  # refreshes itself while jobs move
    assert "Score march.csv" in everything
    assert 'aria-valuenow="40.0"' in everything
    assert "Score march.csv" in only_scoring
    assert "Ingest customer_stats" not in only_scoring
    assert "Ingest customer_stats" in only_queued
    assert "Score march.csv" not in only_queued


def test_the_detail_page_polls_while_running_and_stops_when_finished(logged_in, user):
    job = services.job_create(
        kind=Job.Kind.MATERIALISATION, description="Materialise", total=8, submitted_by=user
    )
    services.job_start(job_id=job.pk)
    services.job_advance(job_id=job.pk, done=2)

    running = logged_in.get(f"/jobs/{job.pk}/").content.decode()
    assert f'hx-get="/jobs/{job.pk}/progress"' in running
    assert 'http-equiv="refresh"' in running  # without JavaScript the page reloads itself
    assert 'aria-valuenow="25.0"' in running
    assert 'id="cancel"' in running

    services.job_succeed(job_id=job.pk)
    fragment = logged_in.get(f"/jobs/{job.pk}/progress").content.decode()
    assert "hx-get" not in fragment
    assert 'aria-valuenow="100.0"' in fragment
    assert 'id="cancel"' not in fragment


def test_the_cancel_button_cancels(logged_in, user):
    job = services.job_create(
        kind=Job.Kind.TRAINING_SET, description="Training set", submitted_by=user
    )

    response = logged_in.post(f"/jobs/{job.pk}/cancel")

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED


def test_an_unknown_job_is_404(logged_in):
    assert logged_in.get("/jobs/999999/").status_code == 404
