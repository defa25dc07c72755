"""Batch scoring end to end on the session's real worker process."""

import numpy as np
import pytest

from batch.models import BatchChunk
from jobs.models import Job
from tests.batch.conftest import FEATURES, make_frame, regressor_frame
from tests.batch.helpers import read_output, submit, wait_finished

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("input_format", "output_format"), [("csv", "csv"), ("parquet", "parquet")]
)
def test_classifier_output_matches_in_process_predict_in_order_with_ids(
    celery_worker, api_client, churn, classifier, write_input, settings, input_format, output_format
):
    # given a file of 500 rows scored in chunks of 64
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 64
    settings.MLPLATFORM_BATCH_BLOCK_ROWS = 20
    frame = make_frame(500, seed=7)
    path = write_input(frame, input_format)

    # when it is submitted with ids, predictions and probabilities
    response = submit(
        api_client,
        path,
        model="churn",
        outputs="predict,predict_proba",
        id_columns="customer_id,branch",
        format=output_format,
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "batch_scoring"
    assert body["status"] == "queued"
    assert body["version"] == churn.version
    job = wait_finished(body["id"])

    # then the output holds every row once, in input order, equal to the model's own answers
    assert job.status == Job.Status.SUCCEEDED, job.error
    output = read_output(api_client, job.pk, output_format)
    classes = list(classifier.classes_)
    assert list(output.columns) == [
        "customer_id",
        "branch",
        "prediction",
        *[f"proba_{label}" for label in classes],
    ]
    assert output["customer_id"].tolist() == frame["customer_id"].tolist()
    assert output["branch"].tolist() == frame["branch"].tolist()  # "003" stays "003"
    assert output["prediction"].tolist() == classifier.predict(frame[FEATURES]).tolist()
    np.testing.assert_allclose(
        output[[f"proba_{label}" for label in classes]].to_numpy(),
        classifier.predict_proba(frame[FEATURES]),
        rtol=1e-9,
    )
    assert BatchChunk.objects.filter(batch_id=job.pk).count() == 8

    detail = api_client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert detail["progress"]["done"] == detail["progress"]["total"] == 500
    assert detail["progress"]["unit"] == "rows"
    assert detail["output_url"].endswith(f"/api/v1/jobs/{job.pk}/output")


@pytest.mark.parametrize(
    ("input_format", "output_format"), [("parquet", "csv"), ("csv", "parquet")]
)
def test_regressor_output_matches_in_process_predict(
    celery_worker, api_client, spend, regressor, write_input, settings, input_format, output_format
):
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 50
    frame = regressor_frame(make_frame(230, seed=3)).drop(columns=["branch"])
    path = write_input(frame, input_format)

    response = submit(
        api_client, path, model="spend", id_columns="customer_id", format=output_format
    )
    assert response.status_code == 201, response.json()
    job = wait_finished(response.json()["id"])

    assert job.status == Job.Status.SUCCEEDED, job.error
    output = read_output(api_client, job.pk, output_format)
    assert list(output.columns) == ["customer_id", "prediction"]
    assert output["customer_id"].tolist() == frame["customer_id"].tolist()
    expected = regressor.predict(frame[[f"f{i}" for i in range(4)]].to_numpy())
    np.testing.assert_allclose(output["prediction"].to_numpy(), expected, rtol=1e-12)


def test_a_bad_value_deep_inside_fails_the_job_naming_row_and_column(
    celery_worker, api_client, churn, write_input, settings
):
    # given 2,000 rows in 100 chunks, with text in 'income' on data row 1,234
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 20
    frame = make_frame(2000, seed=4).astype({"income": object})
    frame.loc[1234, "income"] = "n/a-ish"
    path = write_input(frame, "csv")

    response = submit(api_client, path, model="churn", id_columns="customer_id,branch")
    job = wait_finished(response.json()["id"])

    # then the job failed with the row and the column named, and has no output
    assert job.status == Job.Status.FAILED
    assert "income" in job.error
    assert "row 1234" in job.error
    assert not job.output
    assert BatchChunk.objects.filter(batch_id=job.pk, status="failed").count() == 1
    # and it stopped early: the chunks after the bad one were not all scored
    assert BatchChunk.objects.filter(batch_id=job.pk, status="done").count() < 100


def test_quoted_newlines_commas_and_blank_lines_in_a_csv_keep_rows_aligned(
    celery_worker, api_client, spend, regressor, tmp_path, settings
):
    # given ids with embedded newlines, quotes and commas, CRLF line ends and blank lines,
    # cut into chunks of 7 rows
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 7
    frame = regressor_frame(make_frame(101, seed=5)).drop(columns=["branch"])
    frame["customer_id"] = [f'c{i},"x"\nline{i}' if i % 3 == 0 else f"c{i}" for i in range(101)]
    text = frame.to_csv(index=False, lineterminator="\r\n")
    lines = text.split("\r\n")
    text = "\r\n".join([*lines[:40], "", *lines[40:]])  # a blank line between rows
    path = tmp_path / "tricky.csv"
    path.write_text(text)

    response = submit(api_client, path, model="spend", id_columns="customer_id")
    job = wait_finished(response.json()["id"])

    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.progress_total == 101
    output = read_output(api_client, job.pk)
    assert output["customer_id"].tolist() == frame["customer_id"].tolist()
    expected = regressor.predict(frame[[f"f{i}" for i in range(4)]].to_numpy())
    np.testing.assert_allclose(output["prediction"].to_numpy(), expected, rtol=1e-12)
