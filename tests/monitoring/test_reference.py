"""A version's reference profile: uploaded (CSV or Parquet, with or without the target), bad
files refused with nothing stored, team rights; taken from an evaluation dataset when an
evaluation finishes or a version becomes ready."""

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.conf import settings

from jobs.models import Job
from monitoring.models import ReferenceProfile
from registry import signals as registry_signals
from registry.models import ModelVersion
from tests.conftest import client_for, team_member
from tests.factories import ModelVersionFactory, TeamFactory
from tests.monitoring.conftest import COLUMNS, TARGET, rows_like_training, version_estimator

URL = "/api/v1/models/churn/versions/1/reference"


def _file(data: bytes, name: str = "reference.csv") -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def _upload(client: Any, data: bytes, url: str = URL, **fields: Any) -> Any:
    return client.post(url, {"file": _file(data), **fields}, format="multipart")


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _sample_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "monitoring" / "reference"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def ana(django_user_model: Any, team: Any, media: Path) -> Any:
    return client_for(team_member(django_user_model, "ana", team, apps=("registry",)))


def test_upload_profiles_inputs_and_outputs(ana: Any, churn: Any) -> None:
    frame = rows_like_training(3000, seed=3)

    response = _upload(ana, frame.to_csv(index=False).encode(), target_column=TARGET)

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["model"], body["version"], body["source"], body["rows"]) == (
        "churn",
        1,
        "upload",
        3000,
    )
    amount = body["columns"]["amount"]
    assert amount["kind"] == "numeric"
    assert amount["min"] == pytest.approx(frame["amount"].min())
    assert amount["max"] == pytest.approx(frame["amount"].max())
    assert amount["edges"] == pytest.approx(np.quantile(frame["amount"], np.linspace(0, 1, 11)))
    assert sum(amount["counts"]) == 3000
    city = body["columns"]["city"]
    assert city["kind"] == "categorical"
    expected = frame["city"].value_counts(normalize=True).to_dict()
    assert city["categories"] == pytest.approx(expected)
    # the outputs, as the served model answers for these rows
    estimator = version_estimator(churn)
    predicted = pd.Series(estimator.predict(frame[COLUMNS])).value_counts(normalize=True)
    assert body["outputs"]["prediction"]["categories"] == pytest.approx(predicted.to_dict())
    proba = estimator.predict_proba(frame[COLUMNS])[:, 1]
    assert body["outputs"]["proba__yes"]["edges"] == pytest.approx(
        np.quantile(proba, np.linspace(0, 1, 11)), abs=1e-5
    )
    assert ana.get(URL).json() == body
    stored = ReferenceProfile.objects.get(version=churn)
    sample = pd.read_parquet(stored.sample.path)
    assert len(sample) == 3000
    assert {"in__amount", "in__city", "out__prediction", "out__proba__yes", "target"} <= set(
        sample.columns
    )


def test_parquet_upload_replaces_the_reference_and_its_sample(
    ana: Any, churn: Any, django_capture_on_commit_callbacks: Any
) -> None:
    first = _upload(ana, rows_like_training(500, seed=1).to_csv(index=False).encode())
    assert first.status_code == 201
    old = _sample_files()

    with django_capture_on_commit_callbacks(execute=True):
        second = _upload(ana, _parquet(rows_like_training(800, seed=2)[COLUMNS]))

    assert second.status_code == 201, second.content
    assert second.json()["rows"] == 800
    assert ReferenceProfile.objects.count() == 1
    assert len(_sample_files()) == 1
    assert _sample_files() != old


@pytest.mark.parametrize(
    ("data", "fields", "expected"),
    [
        (b"", {}, "empty"),
        (b"\xff\xfe\x00garbled\x00\x01", {}, "not a readable"),
        (b"PAR1 not really parquet", {}, "not a readable"),
        (b"amount,age,city\n1,2,paris\n3,4\n", {}, "line 3"),
        (b"amount,age,city\n", {}, "no data rows"),
        (b"amount,city\n1,paris\n", {}, "age"),
        (b"amount,age,city\n1,2,paris\nlots,3,lyon\n", {}, "amount"),
        (b"amount,age,city\n1,2,paris\n", {"target_column": "nope"}, "nope"),
        (b"amount,age,city\n,,\n", {}, "no row"),
    ],
)
def test_bad_files_are_400_and_store_nothing(
    ana: Any, churn: Any, data: bytes, fields: dict[str, str], expected: str
) -> None:
    response = _upload(ana, data, **fields)

    assert response.status_code == 400, response.content
    assert expected in response.json()["detail"]
    assert not ReferenceProfile.objects.exists()
    assert _sample_files() == []


def test_missing_file_unknown_version_and_pending_version(ana: Any, churn: Any) -> None:
    assert ana.post(URL, {}, format="multipart").status_code == 400
    data = rows_like_training(50).to_csv(index=False).encode()
    assert _upload(ana, data, url="/api/v1/models/churn/versions/9/reference").status_code == 404
    assert _upload(ana, data, url="/api/v1/models/nope/versions/1/reference").status_code == 404
    ModelVersion.objects.filter(pk=churn.pk).update(status=ModelVersion.Status.PENDING)
    assert _upload(ana, data).status_code == 409
    assert not ReferenceProfile.objects.exists()


def test_other_teams_and_readers_cannot_set_it(
    django_user_model: Any, team: Any, churn: Any, anon_client: Any
) -> None:
    data = rows_like_training(50).to_csv(index=False).encode()
    rival = client_for(
        team_member(django_user_model, "eve", TeamFactory.create(name="rivals"), apps=("registry",))
    )
    reader = client_for(team_member(django_user_model, "rita", team, apps=()))

    assert _upload(rival, data).status_code == 403
    assert rival.get(URL).status_code == 403
    assert _upload(reader, data).status_code == 403
    assert _upload(anon_client, data).status_code == 401
    assert not ReferenceProfile.objects.exists()
    assert reader.get(URL).status_code == 404  # readable, but there is none yet


def _dataset(client: Any, frame: pd.DataFrame) -> int:
    response = client.post(
        "/api/v1/models/churn/evaluation-datasets/",
        {"file": _file(_parquet(frame), "eval.parquet"), "label_column": TARGET},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def _wait(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("not reached in time")


@pytest.mark.django_db(transaction=True)
def test_an_evaluation_and_a_new_version_take_the_dataset_as_reference(
    celery_worker: Any, django_user_model: Any, churn_estimator: Any
) -> None:
    team = TeamFactory.create(name="data")
    ana = client_for(team_member(django_user_model, "ana", team, apps=("registry",)))
    example = [{"amount": 100.0, "age": 40.0, "city": "paris"}]
    v1 = ModelVersionFactory.create(
        model__name="churn", model__owner=team, estimator=churn_estimator, input_example=example
    )
    frame = rows_like_training(1200, seed=5)
    dataset = _dataset(ana, frame)

    # an evaluation of v1 on the dataset has its rows profiled, by a monitoring job
    queued = ana.post(
        "/api/v1/models/churn/versions/1/evaluations/", {"dataset": dataset}, format="json"
    )
    assert queued.status_code == 202, queued.content
    _wait(lambda: ReferenceProfile.objects.filter(version=v1).exists())
    profile = ReferenceProfile.objects.get(version=v1)
    assert (profile.source, profile.rows, profile.profile["dataset"]) == (
        "evaluation",
        1200,
        dataset,
    )
    assert Job.objects.filter(kind=Job.Kind.MONITORING, params__version=1).count() == 1
    assert profile.profile["columns"]["age"]["edges"] == pytest.approx(
        np.quantile(frame["age"], np.linspace(0, 1, 11))
    )

    # a version made ready is profiled on the model's dataset by a monitoring job
    v2 = ModelVersionFactory.create(
        model=v1.model, estimator=churn_estimator, input_example=example
    )
    registry_signals.version_ready.send(sender=ModelVersion, version=v2)
    job = Job.objects.filter(kind=Job.Kind.MONITORING, params__version=2).get()
    _wait(lambda: ReferenceProfile.objects.filter(version=v2).exists())
    assert ReferenceProfile.objects.get(version=v2).source == "evaluation"
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED

    # an uploaded reference is never replaced by a later evaluation
    uploaded = _upload(ana, rows_like_training(300, seed=8).to_csv(index=False).encode())
    assert uploaded.status_code == 201
    again = ana.post(
        "/api/v1/models/churn/versions/1/evaluations/", {"dataset": dataset}, format="json"
    )
    assert again.status_code == 202
    _wait(lambda: Job.objects.filter(kind=Job.Kind.EVALUATION, status="succeeded").count() == 2)
    time.sleep(0.5)
    profile = ReferenceProfile.objects.get(version=v1)
    assert (profile.source, profile.rows) == ("upload", 300)
    assert Job.objects.filter(kind=Job.Kind.MONITORING, params__version=1).count() == 1
