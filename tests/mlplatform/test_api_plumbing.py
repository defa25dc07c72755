import pytest
from django.core.management import call_command

from accounts.models import ApiToken
from tests.conftest import api_key_for


@pytest.mark.django_db
def test_api_requires_a_token(anon_client):
    response = anon_client.get("/api/v1/jobs/")
    assert response.status_code == 401
    assert "detail" in response.json()


@pytest.mark.django_db
def test_bearer_and_token_headers_both_authenticate(anon_client, user):
    key = api_key_for(user)
    for scheme in ("Token", "Bearer"):
        anon_client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
        assert anon_client.get("/api/v1/jobs/").status_code == 200


@pytest.mark.django_db
def test_wrong_token_is_401(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer nope")
    assert anon_client.get("/api/v1/jobs/").status_code == 401


@pytest.mark.django_db
def test_api_token_command_prints_a_new_working_key_each_time(user, anon_client, capsys):
    # keys are stored hashed, so the command cannot show an old one: it makes a named token
    call_command("api_token", "alice")
    first = capsys.readouterr().out.strip()
    call_command("api_token", "alice", "--name", "ci")
    second = capsys.readouterr().out.strip()

    assert first != second
    assert ApiToken.objects.filter(user=user).count() == 2
    assert ApiToken.objects.filter(user=user, name="ci").exists()
    for key in (first, second):
        anon_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert anon_client.get("/api/v1/jobs/").status_code == 200


@pytest.mark.django_db
def test_api_token_command_unknown_user_errors():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="nobody"):
        call_command("api_token", "nobody")


def test_openapi_schema_and_offline_swagger(admin_client):
    schema = admin_client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"openapi: 3" in schema.content
    docs = admin_client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content.lower()
    assert b"//cdn" not in docs.content
    assert b"unpkg" not in docs.content


def test_openapi_schema_generates_without_warnings():
    import subprocess
    import sys

    from django.conf import settings

    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            "/dev/null",
        ],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
