"""Measured metrics equal scikit-learn's own on the same file and the version's own
predictions (asked of the version's predict route), for a classifier and a regressor; the
evaluation job runs on a real worker."""

from typing import Any

import numpy as np
import pytest
from django.test import Client
from sklearn import metrics as skm

from tests.batch.helpers import wait_finished
from tests.conftest import client_for, team_member
from tests.rollout.conftest import FEATURES, labelled, parquet_bytes, upload, version_of

pytestmark = pytest.mark.django_db(transaction=True)


def _evaluate(client: Any, model: str, dataset: int) -> dict[str, Any]:
    queued = client.post(
        f"/api/v1/models/{model}/versions/1/evaluations/", {"dataset": dataset}, format="json"
    )
    assert queued.status_code == 202, queued.content
    job = queued.json()["job"]
    finished = wait_finished(job, timeout=60)
    assert finished.status == "succeeded", finished.error
    answer = client.get(f"/api/v1/models/{model}/versions/1/evaluations/").json()
    entry = next(e for e in answer["datasets"] if e["dataset"]["id"] == dataset)
    assert entry["status"] == "succeeded"
    assert entry["job"] == job
    return answer | {"entry": entry}


def _predictions(client: Any, model: str, frame: Any, proba: bool) -> dict[str, Any]:
    body = {
        "inputs": {name: frame[name].tolist() for name in FEATURES},
        "return": ["predict", "predict_proba"] if proba else ["predict"],
    }
    response = client.post(f"/api/v1/models/{model}/versions/1/predict", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_classifier_metrics_equal_sklearn(
    celery_worker: Any, django_user_model: Any, team: Any, good_classifier: Any
) -> None:
    member = team_member(django_user_model, "ana", team, apps=("registry",))
    client = client_for(member)
    version_of(good_classifier, "churn", metrics={"accuracy": 0.99})
    frame = labelled(500, seed=11)
    created = upload(client, "churn", parquet_bytes(frame), name="eval.parquet")
    assert created.status_code == 201, created.content

    answer = _evaluate(client, "churn", created.json()["id"])
    browser = Client()
    browser.force_login(member)
    job_page = browser.get(f"/jobs/{answer['entry']['job']}/").content.decode()
    assert "/models/churn/rollout/?candidate=1" in job_page

    measured = answer["entry"]["metrics"]
    served = _predictions(client, "churn", frame, proba=True)
    y_true, y_pred = frame["churned"].to_numpy(), np.array(served["predictions"])
    proba = np.array(served["probabilities"])
    assert served["classes"] == ["no", "yes"]
    assert measured["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert measured["precision"] == pytest.approx(
        skm.precision_score(y_true, y_pred, pos_label="yes")
    )
    assert measured["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, pos_label="yes"))
    assert measured["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, pos_label="yes"))
    assert measured["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true == "yes", proba[:, 1]))
    assert measured["log_loss"] == pytest.approx(skm.log_loss(y_true, proba, labels=["no", "yes"]))
    assert measured["confusion_matrix"] == {
        "labels": ["no", "yes"],
        "matrix": skm.confusion_matrix(y_true, y_pred, labels=["no", "yes"]).tolist(),
    }
    assert measured["positive_class"] == "yes"
    assert measured["averaging"] == "binary"
    assert measured["p95_latency_ms"] >= measured["p50_latency_ms"] > 0
    assert measured["rows_per_second"] > 0
    # the uploaded metrics stay apart, as reported
    assert answer["reported"] == {"accuracy": 0.99}
    curves = answer["entry"]["evaluation"]["curves"]
    assert 2 <= len(curves["roc"]) <= 200
    assert 2 <= len(curves["pr"]) <= 200


def test_regressor_metrics_equal_sklearn(
    celery_worker: Any, django_user_model: Any, team: Any, regressor: Any
) -> None:
    member = team_member(django_user_model, "ana", team, apps=("registry",))
    client = client_for(member)
    version_of(regressor, "spend")
    frame = labelled(700, seed=12)
    created = upload(client, "spend", frame.to_csv(index=False).encode(), label="spend")
    assert created.status_code == 201, created.content

    answer = _evaluate(client, "spend", created.json()["id"])

    measured = answer["entry"]["metrics"]
    y_true = frame["spend"].to_numpy()
    y_pred = np.array(_predictions(client, "spend", frame, proba=False)["predictions"])
    assert measured["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    assert measured["rmse"] == pytest.approx(skm.root_mean_squared_error(y_true, y_pred))
    assert measured["r2"] == pytest.approx(skm.r2_score(y_true, y_pred))
    curves = answer["entry"]["evaluation"]["curves"]
    assert len(curves["predicted_vs_actual"]) == 500
    assert sum(curves["residuals"]["counts"]) == 700
    # the rollout page draws predicted against actual and the residuals, with their axes
    browser = Client()
    browser.force_login(member)
    page = browser.get("/models/spend/rollout/").content.decode()
    assert 'id="predicted-chart"' in page
    assert 'id="residuals-1"' in page
    assert 'data-metric="rmse"' in page
    assert "actual" in page
