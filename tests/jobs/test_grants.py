"""A read grant on a job lets another team see and download it, and nothing else."""

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from rest_framework.test import APIClient

from jobs import services
from jobs.models import Job
from tenancy.services import grant_create
from tests.conftest import api_key_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def granted(django_user_model: Any) -> dict[str, Any]:
    red, blue = Group.objects.create(name="red"), Group.objects.create(name="blue")
    rita = django_user_model.objects.create_superuser("rita", password="pw-123-abc")
    bob = django_user_model.objects.create_user("bob", password="pw-123-abc")
    bob.groups.add(blue)
    job = services.job_create(kind=Job.Kind.BATCH_SCORING, description="Score", owner=red)
    job.output.save("scored.csv", ContentFile(b"id,prediction\n1,yes\n"), save=True)
    grant_create(team=blue, target=job, user=rita)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(bob)}")
    return {"job": job, "bob": bob, "client": client}


def test_a_granted_job_is_read_through_the_api_but_not_cancelled(granted: dict[str, Any]) -> None:
    job, client = granted["job"], granted["client"]

    assert [j["id"] for j in client.get("/api/v1/jobs/").json()["results"]] == [job.pk]
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    assert client.get(f"/api/v1/jobs/{job.pk}/output").status_code == 200
    cancel = client.post(f"/api/v1/jobs/{job.pk}/cancel")

    assert cancel.status_code == 403
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED


def test_a_granted_job_is_read_on_the_pages_but_not_cancelled(
    granted: dict[str, Any], client: Any
) -> None:
    job = granted["job"]
    client.force_login(granted["bob"])

    assert client.get(f"/jobs/{job.pk}/").status_code == 200
    assert client.get(f"/jobs/{job.pk}/output").status_code == 200
    assert client.post(f"/jobs/{job.pk}/cancel").status_code == 403
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
