"""A job belongs to a team: another team's member cannot list, read, download or cancel it."""

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile

from jobs import services
from jobs.models import Job
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _member(django_user_model: Any, name: str, team: Group | None) -> Any:
    person = django_user_model.objects.create_user(name, password="pw-123-abc")
    if team is not None:
        person.groups.add(team)
    return person


_client = client_for


@pytest.fixture
def scored(django_user_model: Any) -> dict[str, Any]:
    red, blue = Group.objects.create(name="red"), Group.objects.create(name="blue")
    alice = _member(django_user_model, "alice", red)
    job = services.job_create(kind=Job.Kind.BATCH_SCORING, description="Score", submitted_by=alice)
    job.output.save("scored.csv", ContentFile(b"id,prediction\n1,yes\n"), save=True)
    return {
        "job": job,
        "alice": alice,
        "teammate": _member(django_user_model, "tom", red),
        "outsider": _member(django_user_model, "bob", blue),
        "loner": _member(django_user_model, "lou", None),
    }


def test_a_job_belongs_to_its_submitters_team(scored: dict[str, Any]) -> None:
    assert scored["job"].owner.name == "red"


@pytest.mark.parametrize("who", ["outsider", "loner"])
def test_another_team_cannot_reach_the_job_through_the_api(
    scored: dict[str, Any], who: str
) -> None:
    job, client = scored["job"], _client(scored[who])

    listed = client.get("/api/v1/jobs/").json()["results"]
    detail = client.get(f"/api/v1/jobs/{job.pk}/")
    output = client.get(f"/api/v1/jobs/{job.pk}/output")
    cancel = client.post(f"/api/v1/jobs/{job.pk}/cancel")

    assert [j["id"] for j in listed] == []
    # as missing as a job that never existed: nothing says it is there
    assert detail.status_code == 404
    assert output.status_code == 404
    assert cancel.status_code == 404
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED


def test_another_team_cannot_reach_the_job_through_the_pages(
    scored: dict[str, Any], client: Any
) -> None:
    job = scored["job"]
    client.force_login(scored["outsider"])

    assert "Score" not in client.get("/jobs/").content.decode()
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/jobs/{job.pk}/progress").status_code == 404
    assert client.get(f"/jobs/{job.pk}/output").status_code == 404
    assert client.post(f"/jobs/{job.pk}/cancel").status_code == 404
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED


def test_the_submitters_team_and_superusers_reach_it(
    scored: dict[str, Any], admin_user: Any
) -> None:
    job = scored["job"]
    for person in (scored["alice"], scored["teammate"], admin_user):
        client = _client(person)
        assert [j["id"] for j in client.get("/api/v1/jobs/").json()["results"]] == [job.pk]
        assert client.get(f"/api/v1/jobs/{job.pk}/output").status_code == 200

    assert _client(scored["teammate"]).post(f"/api/v1/jobs/{job.pk}/cancel").status_code == 200
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED


def test_a_job_with_no_owner_and_no_submitter_is_for_superusers_only(
    scored: dict[str, Any], admin_user: Any
) -> None:
    orphan = services.job_create(kind=Job.Kind.INGESTION, description="Nightly")

    assert _client(scored["alice"]).get(f"/api/v1/jobs/{orphan.pk}/").status_code == 404
    assert _client(admin_user).get(f"/api/v1/jobs/{orphan.pk}/").status_code == 200
