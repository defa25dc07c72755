"""An ingest commits its partition and statistics together, a retried upload stores nothing new,
and wide or long files become jobs."""

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from features import offline, services
from features.models import Feature, FeatureGroup, OfflinePartition
from jobs import services as job_services
from jobs.models import Job
from tests.features.conftest import ingest, make_group

pytestmark = pytest.mark.django_db

BODY = "customer_id,event_timestamp,spend\n1,2025-01-01T00:00:00Z,1.5\n2,2025-01-02T00:00:00Z,2.5\n"


@pytest.fixture
def spend_group(api_client: Any, customer: dict[str, Any]) -> dict[str, Any]:
    return make_group(api_client, name="spend", features=[{"name": "spend", "dtype": "float64"}])


def _files() -> list[Path]:
    created = FeatureGroup.objects.get(name="spend").created_at.timestamp()
    root = Path(settings.MEDIA_ROOT) / "features" / "offline" / "spend"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.stat().st_mtime >= created)


def test_the_same_upload_twice_answers_the_first_result_and_adds_no_rows(api_client, spend_group):
    # Given a file ingested once
    first = ingest(api_client, "spend", BODY)
    assert first.status_code == 201, first.content

    # When the client sends it again (say, after its request timed out)
    again = ingest(api_client, "spend", BODY)

    # Then the answer is the first one's and nothing new is stored
    assert again.status_code == 201, again.content
    assert again.json() == first.json() == {"rows": 2}
    assert OfflinePartition.objects.filter(group__name="spend").count() == 1
    assert len(_files()) == 1
    assert Feature.objects.get(group__name="spend").statistics["count"] == 2


def test_a_different_upload_is_stored(api_client, spend_group):
    ingest(api_client, "spend", BODY)

    response = ingest(api_client, "spend", BODY + "3,2025-01-03T00:00:00Z,3.5\n")

    assert response.json() == {"rows": 3}
    assert OfflinePartition.objects.filter(group__name="spend").count() == 2
    assert Feature.objects.get(group__name="spend").statistics["count"] == 5


def test_a_failure_while_committing_leaves_no_partition_file_or_statistics(
    api_client, spend_group, monkeypatch
):
    # Given statistics that cannot be saved (the last write of the transaction)
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(type(Feature.objects), "bulk_update", broken)

    # When a file is ingested
    with pytest.raises(RuntimeError):
        ingest(api_client, "spend", BODY)

    # Then no partition row, no file (not even a pending one), no statistics
    assert not OfflinePartition.objects.filter(group__name="spend").exists()
    assert not _files()
    assert not Feature.objects.get(group__name="spend").statistics
    # And the same file goes in once the store is healthy again
    monkeypatch.undo()
    assert ingest(api_client, "spend", BODY).json() == {"rows": 2}


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("MLPLATFORM_INLINE_INGEST_COLUMNS", 3),  # the group has 4 columns
        ("MLPLATFORM_INLINE_INGEST_CELLS", 8),  # 4 columns x 3 lines = 12 cells
        ("MLPLATFORM_INLINE_INGEST_BYTES", 16),
    ],
)
def test_a_wide_or_long_file_is_an_ingestion_job(api_client, spend_group, settings, setting, value):
    setattr(settings, setting, value)

    response = ingest(api_client, "spend", BODY)

    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"])
    assert job.kind == Job.Kind.INGESTION
    assert job.status == Job.Status.QUEUED
    assert not OfflinePartition.objects.filter(group__name="spend").exists()
    # a retry while it is queued answers with the same job
    assert ingest(api_client, "spend", BODY).json() == {"job": job.pk}


def test_an_ingestion_job_cancelled_before_it_commits_stores_nothing(
    api_client, spend_group, settings, monkeypatch
):
    # Given an ingestion job, cancelled while the worker prepares its commit
    settings.MLPLATFORM_INLINE_INGEST_BYTES = 16
    job_id = ingest(api_client, "spend", BODY).json()["job"]
    collect = offline.statistics_collect

    def cancelled_meanwhile(**kwargs: Any) -> Any:
        job_services.job_cancel(job=Job.objects.get(pk=job_id))
        return collect(**kwargs)

    monkeypatch.setattr(offline, "statistics_collect", cancelled_meanwhile)

    # When the worker's task body runs it
    services.ingestion_run_job(job_id=job_id)

    # Then it stays cancelled and wrote nothing
    job = Job.objects.get(pk=job_id)
    assert job.status == Job.Status.CANCELLED
    assert job.error == ""
    assert not OfflinePartition.objects.filter(group__name="spend").exists()
    assert not _files()
