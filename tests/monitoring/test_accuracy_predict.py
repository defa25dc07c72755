"""Live accuracy end to end: one-row requests through the predict API (each naming its
X-Request-ID, every one logged), their true labels through the feedback API, the monitoring run
on a real worker; the window's accuracy and ROC AUC equal scikit-learn's on the same pairs, and
feedback for an id the log does not hold is stored but not joined."""

from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from tests.conftest import client_for, team_member
from tests.monitoring.conftest import COLUMNS, rows_like_training
from tests.monitoring.test_run import log_everything, run

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 60


def test_feedback_on_served_predictions_gives_sklearn_accuracy(
    celery_worker: Any, django_user_model: Any, team: Any, churn: Any, settings: Any
) -> None:
    log_everything(churn.model, settings)
    ana = client_for(team_member(django_user_model, "ana", team, apps=("registry",)))
    frame = rows_like_training(REQUESTS, seed=9)
    predicted, yes_probability = [], []
    for index, row in frame.iterrows():
        response = ana.post(
            "/api/v1/models/churn/predict",
            {
                "instances": [{name: row[name] for name in COLUMNS}],
                "return": ["predict", "predict_proba"],
            },
            format="json",
            HTTP_X_REQUEST_ID=f"req-{index}",
        )
        assert response.status_code == 200, response.content
        assert response["X-Request-ID"] == f"req-{index}"
        body = response.json()
        predicted.append(body["predictions"][0])
        yes_probability.append(body["probabilities"][0][body["classes"].index("yes")])
    # the truth: the rows' labels, a sixth of them flipped
    truth = frame["churned"].to_numpy().copy()
    truth[::6] = np.where(truth[::6] == "yes", "no", "yes")
    items = [{"request_id": f"req-{i}", "actual": str(truth[i])} for i in range(REQUESTS)]
    sent = ana.post(
        "/api/v1/models/churn/feedback",
        [*items, {"request_id": "req-unknown", "actual": "no"}],
        format="json",
    )
    assert sent.status_code == 201, sent.content
    assert sent.json() == {
        "received": REQUESTS + 1,
        "created": REQUESTS + 1,
        "replaced": 0,
        "joined": REQUESTS,
        "not_joined": 1,
    }

    summary = run(ana)

    accuracy = summary["versions"][0]["windows"]["day"]["accuracy"]
    assert accuracy["labelled"] == REQUESTS
    assert accuracy["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert accuracy["roc_auc"] == pytest.approx(skm.roc_auc_score(truth == "yes", yes_probability))
    assert "baseline" not in accuracy  # neither evaluated nor uploaded with an accuracy
