"""The jobs list: sorted, filtered and paged on the server, durations in words, only the jobs
the user may see."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job
from tenancy.services import grant_create
from tests.factories import JobFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def _ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-job="(\d+)">', html)]


def _job(user, description, *, took=None, kind=Job.Kind.BATCH_SCORING, status="succeeded"):
    now = timezone.now()
    return JobFactory.create(
        description=description, kind=kind, status=status, submitted_by=user,
        started_at=now - took if took is not None else None,
        finished_at=now if took is not None and status != "running" else None,
    )  # fmt: skip


def test_durations_in_words_and_numbers_with_separators(logged_in, user):
    job = _job(user, "long one", took=timedelta(hours=2, minutes=5))
    job.progress_done = job.progress_total = 1_234_567
    job.save()
    _job(user, "waiting", status="queued")
    html = logged_in.get("/jobs/").content.decode()
    assert "2 hours 5 minutes" in html
    assert "1,234,567 / 1,234,567" in html
    assert "not started" in html


def test_sorting_by_duration_kind_and_creation(logged_in, user):
    short = _job(user, "short", took=timedelta(seconds=5))
    long = _job(user, "long", took=timedelta(hours=1))
    queued = _job(user, "queued", status="queued", kind=Job.Kind.INGESTION)
    assert _ids(logged_in.get("/jobs/").content.decode()) == [queued.pk, long.pk, short.pk]
    assert _ids(logged_in.get("/jobs/?sort=created").content.decode()) == [
        short.pk, long.pk, queued.pk,
    ]  # fmt: skip
    longest_first = _ids(logged_in.get("/jobs/?sort=-duration").content.decode())
    assert longest_first == [long.pk, short.pk, queued.pk]  # not started: last
    shortest_first = _ids(logged_in.get("/jobs/?sort=duration").content.decode())
    assert shortest_first[:2] == [short.pk, long.pk]
    by_kind = _ids(logged_in.get("/jobs/?sort=kind").content.decode())
    assert by_kind[0] != queued.pk  # batch_scoring sorts before ingestion
    assert by_kind[-1] == queued.pk
    # an unknown sort is the default order, not an error
    assert logged_in.get("/jobs/?sort=bogus").status_code == 200


def test_search_filters_and_paging_keep_each_other(logged_in, user):
    for index in range(30):
        _job(user, f"score file {index}")
    _job(user, "ingest other")
    first = logged_in.get("/jobs/?q=score&sort=created").content.decode()
    assert len(_ids(first)) == 25
    assert "30 jobs" in first
    assert "ingest other" not in first
    assert "q=score&amp;sort=created&amp;page=2" in first
    second = logged_in.get("/jobs/?q=score&sort=created&page=2").content.decode()
    assert len(_ids(second)) == 5
    # the sort links keep the search
    assert "q=score&amp;sort=-duration" in first
    by_id = logged_in.get(f"/jobs/?q=%23{_ids(first)[0]}").content.decode()
    assert _ids(by_id) == [_ids(first)[0]]


def test_another_teams_jobs_are_listed_only_with_a_grant(client, user):
    other = TeamFactory.create(name="blue")
    theirs = JobFactory.create(description="blue's job", owner=other)
    rita = UserFactory.create(username="rita", teams=[TeamFactory.create(name="red")])
    client.force_login(rita)
    assert "blue&#x27;s job" not in client.get("/jobs/").content.decode()
    grant_create(team=TeamFactory.create(name="red"), target=theirs)
    assert _ids(client.get("/jobs/").content.decode()) == [theirs.pk]
