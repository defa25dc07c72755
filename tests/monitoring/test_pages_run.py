"""The Monitoring tab on figures the platform computed itself: a reference uploaded through the
API, shifted traffic in the prediction log, the tab's Run now button answered by a real worker;
the page then draws what the run found."""

import io
import re
from typing import Any

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import Job
from tests.batch.helpers import wait_finished
from tests.conftest import client_for, team_member
from tests.factories import ModelAliasFactory
from tests.monitoring.conftest import log_write, rows_like_training


def found(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    """The first match of `pattern` in `text`, which must be there."""
    match = re.search(pattern, text, flags)
    assert match is not None, f"{pattern!r} not found"
    return match


pytestmark = pytest.mark.django_db(transaction=True)


def test_run_now_on_a_worker_then_the_tab_draws_the_shift(
    celery_worker: Any, django_user_model: Any, team: Any, churn: Any
) -> None:
    # given production with a reference like its training data, uploaded through the API
    ana = team_member(django_user_model, "ana", team, apps=("registry",))
    ModelAliasFactory.create(version=churn, alias="production")
    handle = io.BytesIO(rows_like_training(3000, seed=3).to_csv(index=False).encode())
    handle.name = "reference.csv"
    uploaded = client_for(ana).post(
        "/api/v1/models/churn/versions/1/reference", {"file": handle}, format="multipart"
    )
    assert uploaded.status_code in (200, 201), uploaded.content
    # and traffic whose amount moved up two deviations, with a new city and missing ages
    shifted = rows_like_training(2000, seed=8)
    shifted["amount"] += 30
    shifted.loc[shifted.index[::4], "city"] = "lille"
    shifted["age"] = shifted["age"].astype(float)
    shifted.loc[shifted.index[::10], "age"] = np.nan
    log_write(churn, shifted, at=timezone.now())
    browser = Client()
    browser.force_login(ana)

    # when they press Run monitoring now and the worker finishes the job
    queued = browser.post("/models/churn/monitoring/run")
    assert queued.status_code == 302
    job = Job.objects.get(kind=Job.Kind.MONITORING)
    assert wait_finished(job.pk, timeout=90).status == Job.Status.SUCCEEDED

    # then the tab links the run and draws the shift: the hot cell, live beside reference, the
    # firing alerts, the flagged quality figures
    body = browser.get("/models/churn/monitoring/").content.decode()
    assert f'href="/jobs/{job.pk}/"' in body
    heatmap = found(r'<svg class="chart heatmap".*?</svg>', body, flags=re.S).group(0)
    cell = found(r'<rect class="cell"[^>]*data-value="([\d.]+)"><title>amount · ', heatmap)
    assert float(cell.group(1)) > 0.2
    age_cell = found(r'<rect class="cell"[^>]*data-value="([\d.]+)"><title>age · ', heatmap)
    assert float(age_cell.group(1)) < 0.1
    amount = found(r'data-column="amount".*?</figure>', body, flags=re.S).group(0)
    assert 'data-series="reference"' in amount
    assert 'data-series="live (latest window)"' in amount
    city = found(r'data-column="city".*?</figure>', body, flags=re.S).group(0)
    # lille is no reference city: counted among the others
    assert "(other) · live (latest window): 0.25</title>" in city
    firing = re.findall(r'<tr data-state="firing">(.*?)</tr>', body, flags=re.S)
    assert any("<td>amount</td>" in row for row in firing)
    assert any("<td>age</td>" in row and "null_rate" in row for row in firing)
    age = found(r'<tr data-column="age">.*?</tr>', body, flags=re.S).group(0)
    assert '<td class="worse">0.100</td>' in age
    assert 'id="prediction-chart"' in body
    badge = browser.get("/models/churn/monitoring/badge").content.decode()
    assert found(r"\d+ alerts? firing", badge)
