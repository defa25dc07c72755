"""Browser: a staff user uploads a joblib file in the admin, sees it ready, moves production."""

import re
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
from django.contrib.auth.models import Group
from sklearn.linear_model import LogisticRegression

from registry import services
from tests.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.services]


@pytest.mark.django_db(transaction=True)
def test_admin_upload_becomes_ready_and_takes_the_production_alias(
    page: Any, celery_worker: Any, django_user_model: Any, tmp_path: Path
) -> None:
    # given a team model and a staff member of that team
    team = Group.objects.create(name="risk")
    staff = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    staff.groups.add(team)
    services.model_create(name="churn", owner=team)
    frame = pd.DataFrame({"age": [20, 30, 40, 50], "income": [1.0, 2.0, 3.0, 4.0]})
    path = tmp_path / "churn.joblib"
    joblib.dump(LogisticRegression().fit(frame, [0, 0, 1, 1]), path)

    # when they upload it in the admin
    log_in(page, "/admin/registry/registeredmodel/")
    page.click("text=churn")
    page.set_input_files("#id_upload_artifact", str(path))
    page.fill("#id_upload_description", "first model")
    page.fill("#id_upload_metrics", '{"accuracy": 0.75}')
    page.click("input[name=_continue]")
    assert page.locator(".messagelist").inner_text().count("it is being validated") == 1

    # then the model page shows it become ready (htmx polls the pending row)
    page.goto("/models/churn/")
    badge = page.locator("#v1 [data-status]")
    badge.wait_for()
    page.wait_for_selector("#v1 [data-status=ready]", timeout=90_000)
    page.reload()  # the signature section is drawn once a version is ready
    assert "age" in page.locator("#signature").inner_text()

    # and moving the production alias in the admin shows on the model page
    page.goto("/admin/registry/registeredmodel/")
    page.click("text=churn")
    page.fill("#id_alias_name", "production")
    page.fill("#id_alias_version", "1")
    page.click("input[name=_continue]")
    assert "production now points at v1" in page.locator(".messagelist").inner_text().lower()
    page.goto("/models/churn/")
    assert re.search(r"production\s*→\s*v1", page.locator("main").inner_text())
    assert "v1" in page.locator("#alias-history").inner_text()
