"""POST /api/v1/jobs/: what is refused at submit, and that a refusal creates nothing."""

import io

import pytest

from batch.models import BatchJob
from jobs.models import Job
from tests.batch.conftest import make_frame, regressor_frame
from tests.batch.helpers import submit

pytestmark = pytest.mark.django_db


def nothing_created() -> bool:
    return not Job.objects.exists() and not BatchJob.objects.exists()


def test_columns_that_do_not_match_the_signature_are_refused_naming_them(
    api_client, churn, write_input
):
    # given a file that lacks 'tenure' and has an unexpected 'colour'
    frame = make_frame(20).drop(columns=["tenure", "branch"]).assign(colour="red")
    path = write_input(frame)

    response = submit(api_client, path, model="churn", id_columns="customer_id")

    assert response.status_code == 400
    body = response.json()
    assert "tenure" in body["detail"]
    assert "colour" in body["detail"]
    assert body["missing"] == ["tenure"]
    assert body["extra"] == ["colour"]
    assert nothing_created()


def test_parquet_columns_are_checked_from_the_footer(api_client, churn, write_input):
    path = write_input(make_frame(20).drop(columns=["age"]), "parquet")

    response = submit(api_client, path, model="churn", id_columns="customer_id,branch")

    assert response.status_code == 400
    assert "age" in response.json()["detail"]
    assert nothing_created()


def test_unknown_model_is_404(api_client, churn, write_input):
    response = submit(api_client, write_input(make_frame(5)), model="nope")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]
    assert nothing_created()


@pytest.mark.parametrize(
    ("fields", "status", "named"),
    [
        ({"format": "xlsx"}, 400, "format"),
        ({"outputs": "predict,explain"}, 400, "explain"),
        ({"version": "7"}, 404, "version 7"),
        ({"alias": "staging"}, 404, "staging"),
        ({"version": "1", "alias": "production"}, 400, "not both"),
        ({"id_columns": "customer_id,branch,nope"}, 400, "nope"),
    ],
)
def test_bad_options_are_refused_naming_the_field(
    api_client, churn, write_input, fields, status, named
):
    path = write_input(make_frame(5))
    payload = {"model": "churn", "id_columns": "customer_id,branch", **fields}

    response = submit(api_client, path, **payload)

    assert response.status_code == status, response.json()
    assert named in response.json()["detail"]
    assert nothing_created()


def test_probabilities_from_a_regressor_are_refused(api_client, spend, write_input):
    frame = regressor_frame(make_frame(5)).drop(columns=["customer_id", "branch"])
    response = submit(api_client, write_input(frame), model="spend", outputs="predict_proba")
    assert response.status_code == 400
    assert "predict_proba" in response.json()["detail"]
    assert nothing_created()


@pytest.mark.parametrize(
    ("content", "named"),
    [(b"\xff\xfe\x00garbage\x00", "UTF-8"), (b"\n\n", "header")],
)
def test_a_file_that_is_neither_csv_nor_parquet_is_refused(api_client, churn, content, named):
    upload = io.BytesIO(content)
    upload.name = "data.csv"
    response = api_client.post(
        "/api/v1/jobs/", {"model": "churn", "input": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert named in response.json()["detail"]
    assert nothing_created()


def test_a_missing_file_is_refused(api_client, churn):
    response = api_client.post("/api/v1/jobs/", {"model": "churn"}, format="multipart")
    assert response.status_code == 400
    assert "input" in response.json()["detail"]


def test_anonymous_users_cannot_submit(anon_client, churn, write_input):
    response = submit(anon_client, write_input(make_frame(5)), model="churn")
    assert response.status_code in (401, 403)
    assert nothing_created()


def test_an_accepted_job_pins_the_production_version_and_lists_it(api_client, churn, write_input):
    response = submit(
        api_client, write_input(make_frame(5)), model="churn", id_columns="customer_id,branch"
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["model"] == "churn"
    assert body["version"] == churn.version
    assert BatchJob.objects.get(pk=body["id"]).version == churn
    listed = api_client.get("/api/v1/jobs/", {"kind": "batch_scoring"}).json()
    assert [job["id"] for job in listed["results"]] == [body["id"]]


def test_cancelling_a_finished_job_is_a_conflict(api_client, churn, write_input):
    job_id = submit(
        api_client, write_input(make_frame(5)), model="churn", id_columns="customer_id,branch"
    ).json()["id"]
    assert api_client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200

    again = api_client.post(f"/api/v1/jobs/{job_id}/cancel")

    assert again.status_code == 409
    assert api_client.get(f"/api/v1/jobs/{job_id}/output").status_code == 404


def test_a_corrupt_parquet_file_is_refused(api_client, churn):
    upload = io.BytesIO(b"PAR1" + b"\x00" * 64)
    upload.name = "data.parquet"
    response = api_client.post(
        "/api/v1/jobs/", {"model": "churn", "input": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert "Parquet" in response.json()["detail"]
    assert nothing_created()


def test_a_file_bigger_than_the_request_body_cap_is_streamed_to_storage(
    api_client, churn, write_input, settings
):
    # given a CSV over the JSON body cap (uploads are spooled to disk, not held in memory)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    path = write_input(make_frame(60_000))
    assert path.stat().st_size > 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # and the 2 MB spool

    response = submit(api_client, path, model="churn", id_columns="customer_id,branch")

    assert response.status_code == 201, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.input.size == path.stat().st_size
    assert job.input.name.startswith("jobs/inputs/")  # a server-chosen name


def test_an_upload_over_the_size_limit_is_413(api_client, churn, write_input, settings):
    settings.MLPLATFORM_MAX_UPLOAD_BYTES = 1000
    response = submit(api_client, write_input(make_frame(100)), model="churn")
    assert response.status_code == 413
    assert "MLPLATFORM_MAX_UPLOAD_BYTES" in response.json()["detail"]
    assert nothing_created()
