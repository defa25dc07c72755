"""Browser: the items issue 14 found broken, each driven as a user would in Chromium."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import joblib
import pandas as pd
import pytest
import requests
from django.contrib.auth.models import Group
from django.db import connection
from sklearn.linear_model import LogisticRegression

from jobs.models import Job
from registry import services as registry_services
from registry.models import ModelVersion
from serving import selectors
from tests.batch.conftest import classifier, make_frame, register
from tests.batch.helpers import submit, wait_finished
from tests.conftest import _outside, api_key_for, client_for, log_in
from tests.factories import DEFAULT_TEAM, ModelVersionFactory, TeamFactory, UserFactory
from tests.serving.conftest import _fit_all

__all__ = ["classifier"]  # the fitted model fixture, shared with tests/batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SNIPPETS = ["curl (native)", "curl (MLflow)", "curl (Open Inference v2)", "Python"]


@pytest.fixture(autouse=True)
def _fresh_resolution() -> None:
    selectors.resolution_cache_clear()


def _member(name: str = "alice", *, apps: tuple[str, ...] = ("registry",)) -> Any:
    """A data scientist: a member of the team, not staff."""
    team = Group.objects.filter(name=DEFAULT_TEAM).first() or TeamFactory.create(name=DEFAULT_TEAM)
    return UserFactory.create(username=name, password=f"pw-{name}-123", teams=[team], apps=apps)


def _run_snippet(title: str, code: str, token: str) -> str:
    """Run a snippet copied from the page as its reader would, with their token in the
    environment; returns what it printed."""
    env = {**os.environ, "MLPLATFORM_TOKEN": token}
    if title == "Python":
        command = [sys.executable, "-c", code]
    else:
        command = [
            "bash",
            "-c",
            code.replace("curl -X POST", "curl -s -w '\\n%{http_code}' -X POST"),
        ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


# --- snippets after Predict --------------------------------------------------------------------


def test_every_snippet_copied_after_predict_runs_against_the_server(page: Any) -> None:
    # given a ready iris model, its team's member signed in on the Try-it page
    alice = _member()
    estimator, example = _fit_all()["iris"]
    ModelVersionFactory.create(model__name="iris", estimator=estimator, input_example=example)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "/serving/models/iris/try/", "alice", "pw-alice-123")

    # when they change a value and click Predict
    page.fill("#id_f2", "5.2")
    page.click("#try-form button[type=submit]")
    page.locator("#prediction").wait_for()

    # then each snippet, copied with its button, runs as is and answers 200
    token = api_key_for(alice)
    snippets = page.locator(".snippet")
    assert snippets.count() == len(SNIPPETS)
    for position, title in enumerate(SNIPPETS):
        snippet = snippets.nth(position)
        assert snippet.locator("h3").inner_text().startswith(title)
        snippet.locator("button.copy").click()
        expect_copied = snippet.locator("button.copy.copied")
        expect_copied.wait_for()
        code = page.evaluate("navigator.clipboard.readText()")
        assert code == snippet.locator("code").inner_text()
        assert "5.2" in code
        assert '"5.2"' not in code  # the number typed, unquoted
        output = _run_snippet(title, code, token)
        if title == "Python":
            assert "predictions" in output, output
        else:
            body, status = output.rsplit("\n", 1)
            assert status == "200", f"{title}: {status} {body}"
            if "v2" in title:
                assert json.loads(body)["outputs"], body


# --- sign-in for everyone -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/models/", "/features/", "/jobs/", "/accounts/tokens/", "/jobs/new"],
)
def test_a_non_staff_member_signs_in_from_every_redirect(page: Any, path: str) -> None:
    # given a data scientist who is not staff, signed out
    _member()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))

    # when they open a page that needs a sign-in
    page.goto(path)

    # then they land on the site's sign-in page (never the admin's), and signing in there
    # brings them back where they were going
    assert urlsplit(page.url).path == "/accounts/login/"
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice-123")
    page.click("#sign-in")
    page.wait_for_url(f"**{path}")
    assert "alice" in page.locator("header .user").inner_text()
    assert not [url for url in asked if "/admin/login" in url]


def test_the_log_in_link_of_the_top_bar_signs_in_a_non_staff_member(page: Any) -> None:
    # given a data scientist who is not staff, on a page that anyone may see
    _member()
    page.goto("/accounts/login/?next=/models/")
    link = page.locator("header .user a", has_text="Log in")

    # when they follow the top bar's "Log in" and sign in
    link.click()
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice-123")
    page.click("#sign-in")

    # then they are signed in where they were going, not refused as the admin's sign-in would
    page.wait_for_url("**/models/")
    assert "alice" in page.locator("header .user").inner_text()
    assert "Please enter the correct" not in page.content()


# --- the signature shows up without a reload ---------------------------------------------------


@pytest.mark.services
def test_the_signature_appears_when_a_version_uploaded_while_the_page_is_open_turns_ready(
    page: Any, celery_worker: Any, live_server: Any, tmp_path: Path
) -> None:
    # given a model without versions, open in the browser of a member of its team
    alice = _member()
    registry_services.model_create(name="churn", owner=Group.objects.get(name=DEFAULT_TEAM))
    log_in(page, "/models/churn/", "alice", "pw-alice-123")
    assert page.locator("#no-signature").is_visible()
    assert page.locator("#signature").count() == 0

    # when a version is uploaded through the API
    frame = pd.DataFrame({"age": [20, 30, 40, 50], "income": [1.0, 2.0, 3.0, 4.0]})
    path = tmp_path / "churn.joblib"
    joblib.dump(LogisticRegression().fit(frame, [0, 0, 1, 1]), path)
    with path.open("rb") as artifact:
        response = requests.post(
            f"{live_server.url}/api/v1/models/churn/versions/",
            headers={"Authorization": f"Token {api_key_for(alice)}"},
            files={"artifact": ("churn.joblib", artifact)},
            timeout=30,
        )
    assert response.status_code == 201, response.text

    # then, without a reload, the version shows up, turns ready, and its signature appears
    page.wait_for_selector("#v1 [data-status]", timeout=30_000)
    page.wait_for_selector("#signature", timeout=120_000)
    assert "age" in page.locator("#signature").inner_text()
    page.wait_for_selector("#v1 [data-status=ready]")
    assert "v1, newest ready" in page.locator("#signature-section h2").first.inner_text()


def test_the_signature_follows_a_pending_version_that_turns_ready(page: Any) -> None:
    # given v1 ready and v2 still being validated, the model page open on v1's signature
    _member()
    estimator, example = _fit_all()["iris"]
    first = ModelVersionFactory.create(
        model__name="iris", estimator=estimator, input_example=example
    )
    second = ModelVersionFactory.create(
        model=first.model, estimator=estimator, status=ModelVersion.Status.PENDING
    )
    log_in(page, "/models/iris/", "alice", "pw-alice-123")
    heading = page.locator("#signature-section h2").first
    assert "v1, newest ready" in heading.inner_text()
    page.locator("#v1 input[type=checkbox]").check()

    # when v2 turns ready
    ModelVersion.objects.filter(pk=second.pk).update(status=ModelVersion.Status.READY)

    # then, without a reload, the signature shown is v2's and v2's row says ready; what the
    # user ticked in the versions table stays ticked
    page.wait_for_function(
        "document.querySelector('#signature-section h2').innerText.includes('v2, newest ready')"
    )
    page.wait_for_selector("#v2 [data-status=ready]")
    assert page.locator("#v1 input[type=checkbox]").is_checked()


# --- a big batch job's progress moves while its chunks run -------------------------------------


def _watch_newest_job(seen: list[float], submitted: threading.Event) -> None:
    """Records the newest batch job's percent every few milliseconds until it finishes (on its
    own database connection, as the progress API's readers have); stops at once if the submit
    returned without creating one."""
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            job = Job.objects.filter(kind=Job.Kind.BATCH_SCORING).order_by("-pk").first()
            if job is None:
                if submitted.is_set():
                    return
            else:
                seen.append(job.percent)
                if job.is_finished:
                    return
            time.sleep(0.005)
    finally:
        connection.close()


@pytest.mark.services
def test_a_200k_row_job_shows_progress_between_0_and_100(
    page: Any, celery_worker: Any, classifier: Any, tmp_path: Path
) -> None:
    # given a ready model and a 200,000-row file, scored in the default chunks
    alice = _member(apps=("registry", "jobs", "batch"))
    register(classifier, name="churn", alias="production")
    path = tmp_path / "customers.csv"
    make_frame(200_000, seed=5).to_csv(path, index=False)
    client = client_for(alice)

    # when the job is submitted while a watcher samples the newest job's progress from before
    # the submit (so a fast worker cannot finish chunks before the first sample)
    seen: list[float] = []
    submitted = threading.Event()
    watcher = threading.Thread(target=_watch_newest_job, args=(seen, submitted), daemon=True)
    watcher.start()
    response = submit(client, path, model="churn", id_columns="customer_id,branch")
    submitted.set()
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    watcher.join(timeout=240)

    # then it moved through at least three values between 0 % and 100 %, never backwards, and
    # the count ends exact
    job = wait_finished(job_id)
    assert job.status == Job.Status.SUCCEEDED, job.error
    between = sorted({value for value in seen if 0 < value < 100})
    assert len(between) >= 3, seen
    assert seen == sorted(seen)
    assert (job.progress_done, job.progress_total) == (200_000, 200_000)
    log_in(page, f"/jobs/{job_id}/", "alice", "pw-alice-123")
    page.wait_for_selector("#job-progress[data-status=succeeded]", timeout=30_000)
    assert "200" in page.inner_text("#job-counts")


# --- a banner that would go stale follows the job ----------------------------------------------


@pytest.mark.services
def test_the_queued_banner_follows_the_job_until_it_finishes(
    page: Any, celery_worker: Any, classifier: Any, tmp_path: Path
) -> None:
    # given a member on the batch form with a file to score
    _member(apps=("registry", "jobs", "batch"))
    register(classifier, name="churn", alias="production")
    path = tmp_path / "customers.csv"
    make_frame(300, seed=6).to_csv(path, index=False)
    log_in(page, "/jobs/new", "alice", "pw-alice-123")

    # when they submit it
    page.select_option("#id_model", "churn")
    page.fill("#id_id_columns", "customer_id,branch")
    page.set_input_files("#id_input", str(path))
    page.wait_for_selector('#check-result[data-ok="true"]')
    page.click("#submit-job")
    page.wait_for_url("**/jobs/*/")
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    banner = page.locator(f"#message-job-{job_id}")

    # then the banner names the job's status, and once it finishes says so without a reload
    assert banner.inner_text() in {f"Job {job_id} {s}." for s in ("queued", "running", "succeeded")}
    page.evaluate("window.__same_page = true")
    page.wait_for_selector("#job-progress[data-status=succeeded]", timeout=60_000)
    page.wait_for_function(
        f"document.querySelector('#message-job-{job_id}').innerText === 'Job {job_id} succeeded.'"
    )
    assert page.evaluate("window.__same_page") is True
    assert page.locator(".messages li").count() == 1


# --- Swagger's Authorize: one token is enough ---------------------------------------------------


def test_swagger_predicts_with_one_token_authorized(page: Any) -> None:
    # given a ready iris model and a member's token
    alice = _member()
    estimator, example = _fit_all()["iris"]
    ModelVersionFactory.create(model__name="iris", estimator=estimator, input_example=example)
    token = api_key_for(alice)

    # when they authorize Swagger UI with that one token
    page.goto("/api/docs/")
    page.click("button.authorize")
    dialog = page.locator(".modal-ux")
    scheme = dialog.locator(".auth-container", has_text="tokenAuth")
    scheme.locator("input").fill(f"Token {token}")
    scheme.locator("button.authorize").click()
    dialog.locator("button.btn-done").first.click()

    # and try the native predict route out
    operation = page.locator("[id$='-api_v1_models_predict_create']")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("input[placeholder='name']").fill("iris")
    operation.locator("textarea.body-param__text").fill(
        json.dumps({"instances": [example[0]], "return": ["predict"]})
    )
    operation.locator("button.execute").click()

    # then the prediction answers 200
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200", operation.locator(
        ".live-responses-table"
    ).inner_text()


# --- the request recorder of the `page` fixture --------------------------------------------------


def test_the_request_recorder_tells_the_live_server_from_other_hosts() -> None:
    server = "http://localhost:40123"
    assert not _outside("http://localhost:40123/static/mlplatform/site.css", server)
    assert _outside("https://cdn.example.com/htmx.js", server)
    assert _outside("http://localhost:40124/", server)  # another port is another server
    assert _outside("ws://fonts.example.com/", server)
    assert not _outside("data:image/svg+xml;base64,PHN2Zz4=", server)
