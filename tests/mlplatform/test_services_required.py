"""The services pass must fail, never skip, when PostgreSQL or Redis cannot be reached."""

import os
import subprocess
import sys

import pytest
from django.conf import settings


def _run_suite_with(env_overrides: dict[str, str | None], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLPLATFORM_VAR_DIR": str(tmp_path), "MLPLATFORM_REQUIRE_SERVICES": "1"}
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)  # the embedded defaults: SQLite and the filesystem broker
        else:
            env[key] = value
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/mlplatform/test_health.py",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (
            {
                "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/mlplatform",
                "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
            },
            "Redis unreachable",
        ),
        (
            {
                "DATABASE_URL": "postgres://postgres@127.0.0.1:1/mlplatform",
                "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
            },
            "PostgreSQL unreachable",
        ),
        ({"DATABASE_URL": None, "CELERY_BROKER_URL": None}, "is not PostgreSQL"),
    ],
)
def test_unreachable_services_fail_the_run(overrides, needle, tmp_path):
    result = _run_suite_with(overrides, tmp_path)

    assert result.returncode != 0
    assert needle in result.stdout + result.stderr
    assert " passed" not in result.stdout
