"""A user launches a batch scoring job from /jobs/new, watches it finish, downloads the output."""

import pandas as pd
import pytest

from tests.batch.conftest import FEATURES, classifier, make_frame, register
from tests.conftest import log_in

__all__ = ["classifier"]  # the fitted model fixture, shared with tests/batch

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_launch_watch_and_download_a_batch_job(
    page, celery_worker, django_user_model, classifier, tmp_path, settings
):
    # given a ready model and a file of 1,200 rows scored in 30 chunks
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 40
    settings.MLPLATFORM_BATCH_BLOCK_ROWS = 4
    register(classifier, name="churn", alias="production")
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    frame = make_frame(1200, seed=31)
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)

    log_in(page, "/jobs/new")

    # when the user picks the model and the file, the columns are checked before submitting
    page.select_option("#id_model", "churn")
    page.fill("#id_id_columns", "customer_id,branch")
    page.set_input_files("#id_input", str(path))
    page.wait_for_selector('#check-result[data-ok="true"]')
    page.check("input[name=outputs][value=predict_proba]")
    page.click("#submit-job")
    page.wait_for_url("**/jobs/*/")

    # then the progress bar moves to done without reloading the page
    seen = []
    page.evaluate("window.__same_page = true")
    for _ in range(600):
        seen.append(float(page.get_attribute("#job-progress svg", "aria-valuenow") or 0))
        if page.get_attribute("#job-progress", "data-status") in ("succeeded", "failed"):
            break
        page.wait_for_timeout(100)
    assert page.inner_text("#job-status") == "Succeeded"
    assert page.evaluate("window.__same_page") is True  # updated in place by htmx polling
    assert seen[0] < 100.0  # it was seen unfinished first
    assert seen == sorted(seen)
    assert float(page.get_attribute("#job-progress svg", "aria-valuenow")) == 100.0
    assert "1200 / 1200 rows" in page.inner_text("#job-counts")

    # and the output downloads, one row per input row, in order
    with page.expect_download() as download_info:
        page.click("#download")
    download = download_info.value
    output = pd.read_csv(download.path(), dtype={"customer_id": str})
    assert output["customer_id"].tolist() == frame["customer_id"].tolist()
    assert output["prediction"].tolist() == classifier.predict(frame[FEATURES]).tolist()
    assert [c for c in output.columns if c.startswith("proba_")] == [
        f"proba_{label}" for label in classifier.classes_
    ]


@pytest.mark.django_db(transaction=True)
def test_the_column_check_sends_only_the_head_of_a_large_csv(
    page, django_user_model, classifier, tmp_path
):
    # given a ready model and a CSV of about 2.5 MB
    register(classifier, name="churn", alias="production")
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    path = tmp_path / "big.csv"
    make_frame(60_000, seed=5).to_csv(path, index=False)
    assert path.stat().st_size > 2 * 1024 * 1024
    sent: list[int] = []
    page.on(
        "request",
        lambda request: (
            sent.append(int(request.all_headers().get("content-length", 0)))
            if request.url.endswith("/jobs/new/check")
            else None
        ),
    )
    log_in(page, "/jobs/new")

    # when the user picks the model and the file
    page.select_option("#id_model", "churn")
    page.fill("#id_id_columns", "customer_id,branch")
    page.set_input_files("#id_input", str(path))

    # then the columns are checked from the file's first megabyte
    page.wait_for_selector('#check-result[data-ok="true"]')
    assert sent
    assert max(sent) < 1.1 * 1024 * 1024  # the whole file is 2.5 MB
