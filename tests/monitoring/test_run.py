"""The monitoring run on a real worker, through the API: logged traffic → feedback → `POST
monitoring/run` → `GET monitoring/` and /metrics. Live accuracy equals scikit-learn's on the
same pairs; drift, null and category alerts fire on shifted traffic and resolve when the
traffic matches the reference again; a stationary stream of 50,000 rows fires nothing at the
default thresholds."""

import io
import uuid
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from sklearn import metrics as skm

from monitoring.models import Alert, AlertRule
from registry.models import RegisteredModel
from serving import selectors as serving_selectors
from serving import traffic
from tests.batch.helpers import wait_finished
from tests.conftest import client_for, team_member
from tests.factories import TeamFactory
from tests.monitoring.conftest import COLUMNS, log_frame, log_write, rows_like_training

pytestmark = pytest.mark.django_db(transaction=True)

RUN = "/api/v1/models/churn/monitoring/run"
SUMMARY = "/api/v1/models/churn/monitoring/"


@pytest.fixture
def ana(django_user_model: Any, team: Any) -> Any:
    return client_for(team_member(django_user_model, "ana", team, apps=("registry",)))


def one_row_requests(version: Any, frame: Any, *, at: datetime) -> Any:
    """Log `frame` as one request per row (ids `q<n>`); returns the logged rows."""
    logged = log_frame(version, frame, at=at, rows_per_request=1)
    logged["request_id"] = [f"q{i}" for i in range(len(logged))]
    table = pa.Table.from_pandas(logged, preserve_index=False)
    table = table.cast(
        pa.schema(
            [
                pa.field(f.name, pa.string()) if f.name in ("out__prediction", "in__city") else f
                for f in table.schema
            ]
        )
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    default_storage.save(
        f"prediction-log/model={version.model_id}/date={at:%Y-%m-%d}/hour={at:%H}/"
        f"{version.version}-{uuid.uuid4().hex[:8]}.parquet",
        ContentFile(buffer.getvalue()),
    )
    return logged


def log_everything(model: Any, settings: Any) -> None:
    """Every request of `model` logged at once; no route or resolution cached from an earlier
    test (ids are reused once the database is flushed)."""
    settings.MLPLATFORM_LOG_BACKGROUND = False
    settings.MLPLATFORM_ALIAS_TTL_SECONDS = 0
    serving_selectors.resolution_cache_clear()
    traffic.cache_clear()
    RegisteredModel.objects.filter(pk=model.pk).update(log_sample_rate=1.0)


def run(client: Any) -> dict[str, Any]:
    """Run monitoring on the worker and answer GET monitoring/."""
    queued = client.post(RUN)
    assert queued.status_code == 202, queued.content
    job = wait_finished(queued.json()["job"], timeout=90)
    assert job.status == "succeeded", job.error
    assert job.kind == "monitoring"
    assert (job.progress_done, job.progress_total, job.progress_unit) == (5, 5, "steps")
    summary = client.get(SUMMARY)
    assert summary.status_code == 200, summary.content
    return summary.json()


def upload_reference(client: Any, frame: Any) -> None:
    handle = io.BytesIO(frame.to_csv(index=False).encode())
    handle.name = "reference.csv"
    response = client.post(
        "/api/v1/models/churn/versions/1/reference", {"file": handle}, format="multipart"
    )
    assert response.status_code in (200, 201), response.content


def firing(summary: dict[str, Any]) -> set[tuple[str, str]]:
    return {(a["metric"], a["column"]) for a in summary["alerts"] if a["state"] == "firing"}


def test_live_accuracy_equals_sklearn(celery_worker: Any, ana: Any, churn: Any) -> None:
    churn.metrics = {"accuracy": 0.97}
    churn.save()
    frame = rows_like_training(400, seed=5)
    logged = one_row_requests(churn, frame, at=timezone.now())
    # feedback for 300 of the 400 requests, a fifth of the labels flipped
    truth = frame["churned"].to_numpy().copy()
    flip = np.random.default_rng(1).random(len(truth)) < 0.2
    truth[flip] = np.where(truth[flip] == "yes", "no", "yes")
    labelled = list(range(0, 300))
    sent = ana.post(
        "/api/v1/models/churn/feedback",
        [{"request_id": f"q{i}", "actual": str(truth[i])} for i in labelled],
        format="json",
    )
    assert sent.status_code == 201, sent.content
    assert sent.json()["joined"] == 300

    summary = run(ana)

    entry = next(v for v in summary["versions"] if v["version"] == 1 and v["role"] == "primary")
    measured = entry["windows"]["day"]["accuracy"]
    y_true = truth[labelled]
    y_pred = logged["out__prediction"].to_numpy()[labelled]
    assert measured["labelled"] == 300
    assert measured["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert measured["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y_true == "yes", logged["out__proba__yes"].to_numpy()[labelled])
    )
    assert measured["baseline"] == {"accuracy": 0.97, "source": "reported"}
    assert measured["accuracy_drop"] == pytest.approx(0.97 - measured["accuracy"])
    assert entry["windows"]["hour"]["accuracy"]["labelled"] == 300

    # an accuracy rule breaks: an alert for the version, on the API and /metrics
    rules = ana.put(
        "/api/v1/models/churn/alert-rules/",
        [{"metric": "accuracy_drop", "threshold": 0.05}],
        format="json",
    )
    assert rules.status_code == 200, rules.content
    summary = run(ana)
    assert firing(summary) == {("accuracy_drop", "")}
    alert = summary["versions"][0]["alerts"][0]
    assert alert["version"] == 1
    assert alert["value"] == pytest.approx(measured["accuracy_drop"])


def test_drift_alerts_fire_on_shifted_traffic_and_resolve(
    celery_worker: Any, ana: Any, churn: Any, settings: Any
) -> None:
    # given a reference like the training data: the model gets its default rules
    upload_reference(ana, rows_like_training(4000, seed=3))
    assert set(AlertRule.objects.filter(model=churn.model).values_list("metric", "threshold")) == {
        ("psi", 0.2),
        ("null_rate", 0.05),
        ("accuracy_drop", 0.05),
    }
    put = ana.put(
        "/api/v1/models/churn/alert-rules/",
        [
            {"metric": "psi", "threshold": 0.2},
            {"metric": "null_rate", "threshold": 0.05},
            {"metric": "unknown_categories", "column": "city", "threshold": 0.05},
        ],
        format="json",
    )
    assert put.status_code == 200, put.content
    # when traffic moves: amount's mean up two deviations, a new city, a tenth of ages missing
    shifted = rows_like_training(3000, seed=8)
    shifted["amount"] += 30
    shifted.loc[shifted.index[::4], "city"] = "lille"
    shifted["age"] = shifted["age"].astype(float)
    shifted.loc[shifted.index[::10], "age"] = np.nan
    log_write(churn, shifted, at=timezone.now())

    summary = run(ana)

    assert firing(summary) >= {
        ("psi", "amount"),
        ("null_rate", "age"),
        ("unknown_categories", "city"),
    }
    assert ("psi", "age") not in firing(summary)
    columns = summary["versions"][0]["windows"]["day"]["columns"]
    assert columns["amount"]["psi"] > 0.2
    assert columns["age"]["null_rate"] == pytest.approx(0.1, abs=0.001)
    started = {a["id"] for a in summary["alerts"] if a["state"] == "firing"}

    # the gauges appear on /metrics
    settings.MLPLATFORM_METRICS_TOKEN = "scrape-secret"
    scraped = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert scraped.status_code == 200
    text = scraped.content.decode()
    amount_alert = 'column="amount",group="",metric="psi",model="churn",version="1"'
    assert f"mlplatform_alert_firing{{{amount_alert}}} 1.0" in text
    psi_line = next(
        line
        for line in text.splitlines()
        if line.startswith("mlplatform_monitoring_psi{")
        and 'column="amount"' in line
        and 'window="day"' in line
    )
    assert float(psi_line.rsplit(" ", 1)[1]) == pytest.approx(columns["amount"]["psi"])
    assert "mlplatform_monitoring_null_rate{" in text
    assert "mlplatform_monitoring_rows{" in text

    # when the shifted traffic becomes the reference, drift rules hold again: resolved; the
    # null rate is not relative to the reference, so its alert goes on firing
    upload_reference(ana, shifted.drop(columns=["churned"]))
    summary = run(ana)

    assert firing(summary) == {("null_rate", "age")}
    resolved = {a["id"]: a for a in summary["alerts"] if a["state"] == "resolved"}
    null_alert = Alert.objects.get(rule__metric="null_rate")
    assert started - {null_alert.pk} <= set(resolved)
    assert all(resolved[i]["resolved_at"] for i in started - {null_alert.pk})
    assert null_alert.state == "firing"
    assert "null_rate of age is 0.1" in null_alert.message
    assert Alert.objects.filter(state="firing").count() == 1
    gauges = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").content.decode()
    assert 'mlplatform_alert_firing{column="amount"' not in gauges
    assert 'mlplatform_alert_firing{column="age",group="",metric="null_rate"' in gauges

    # a run again changes nothing: still one open alert per rule, version and column
    summary = run(ana)
    assert Alert.objects.filter(rule__metric="null_rate").count() == 1
    assert firing(summary) == {("null_rate", "age")}


def test_stationary_stream_fires_nothing(celery_worker: Any, ana: Any, churn: Any) -> None:
    upload_reference(ana, rows_like_training(5000, seed=3))
    log_write(churn, rows_like_training(50_000, seed=21), at=timezone.now())

    summary = run(ana)

    day = summary["versions"][0]["windows"]["day"]
    assert day["rows"] == 50_000
    assert {r["metric"] for r in summary["rules"]} == {"psi", "null_rate", "accuracy_drop"}
    assert firing(summary) == set()
    assert max(c["psi"] for c in day["columns"].values()) < 0.2


def test_run_needs_write_rights_and_reads_need_the_team(
    django_user_model: Any, churn: Any, team: Any
) -> None:
    reader = client_for(team_member(django_user_model, "rob", team, apps=()))
    outsider = client_for(
        team_member(django_user_model, "eve", TeamFactory.create(name="other"), apps=("registry",))
    )
    assert reader.post(RUN).status_code == 403
    assert reader.get(SUMMARY).status_code == 200
    assert outsider.get(SUMMARY).status_code == 403
    assert outsider.post(RUN).status_code == 403
    assert outsider.get("/api/v1/models/churn/alert-rules/").status_code == 403
    assert (
        client_for(team_member(django_user_model, "ana", team, apps=("registry",)))
        .post("/api/v1/models/nope/monitoring/run")
        .status_code
        == 404
    )


@pytest.mark.django_db(transaction=False)
def test_a_second_run_while_one_is_queued_is_409(ana: Any, churn: Any) -> None:
    first = ana.post(RUN)
    assert first.status_code == 202
    job = first.json()["job"]

    second = ana.post(RUN)

    assert second.status_code == 409
    assert second.json()["job"] == job
    assert ana.get(f"/api/v1/jobs/{job}/").json()["kind"] == "monitoring"


def test_shifted_traffic_through_the_predict_api_fires_drift_alerts(
    celery_worker: Any, ana: Any, churn: Any, settings: Any
) -> None:
    log_everything(churn.model, settings)
    upload_reference(ana, rows_like_training(4000, seed=3))
    shifted = rows_like_training(3000, seed=12)
    shifted["amount"] += 30
    shifted.loc[shifted.index[::3], "city"] = "berlin"

    response = ana.post(
        "/api/v1/models/churn/predict",
        {"inputs": {name: shifted[name].tolist() for name in COLUMNS}},
        format="json",
    )
    assert response.status_code == 200, response.content
    summary = run(ana)

    assert summary["versions"][0]["windows"]["day"]["rows"] == 3000
    assert firing(summary) >= {("psi", "amount"), ("psi", "city")}
    assert ("psi", "age") not in firing(summary)
