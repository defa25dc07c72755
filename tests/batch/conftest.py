"""Batch tests score with the ready versions and input files of tests/jobs/conftest.py."""

from tests.jobs.conftest import (  # noqa: F401 - fixtures
    churn,
    classifier,
    regressor,
    spend,
    write_input,
)
