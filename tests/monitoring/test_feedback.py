"""Ground truth through the feedback API: JSON items or a CSV upload, stored once per request id
(sent again: replaced), ids found in the prediction log counted as joined; bad input refused
with nothing stored; team rights."""

import io
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from monitoring.models import Feedback
from tests.conftest import client_for, team_member
from tests.factories import ModelVersionFactory, RegisteredModelFactory, TeamFactory
from tests.monitoring.conftest import log_write, rows_like_training

URL = "/api/v1/models/churn/feedback"


@pytest.fixture
def ana(django_user_model: Any, team: Any) -> Any:
    return client_for(team_member(django_user_model, "ana", team, apps=("registry",)))


def _csv(text: str) -> io.BytesIO:
    handle = io.BytesIO(text.encode())
    handle.name = "feedback.csv"
    return handle


def _stored() -> dict[str, Any]:
    return dict(Feedback.objects.values_list("request_id", "actual"))


def test_json_items_are_stored_and_counted_joined_when_logged(ana: Any, churn: Any) -> None:
    # given two logged requests of 100 rows each (ids r<hour>-primary-0 and -1)
    now = timezone.now()
    log_write(churn, rows_like_training(200, seed=1), at=now)
    logged = [f"r{now:%Y%m%d%H}-primary-0", f"r{now:%Y%m%d%H}-primary-1"]

    response = ana.post(
        URL,
        [
            {"request_id": logged[0], "actual": "yes"},
            {"request_id": logged[1], "actual": "no"},
            {"request_id": "never-logged", "actual": "no"},
        ],
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json() == {
        "received": 3,
        "created": 3,
        "replaced": 0,
        "joined": 2,
        "not_joined": 1,
    }
    assert _stored() == {logged[0]: "yes", logged[1]: "no", "never-logged": "no"}


def test_feedback_sent_again_replaces_the_earlier_value(ana: Any, churn: Any) -> None:
    first = ana.post(URL, {"request_id": "a1", "actual": "yes"}, format="json")
    assert first.status_code == 201
    before = Feedback.objects.get().received_at

    again = ana.post(URL, [{"request_id": "a1", "actual": "no"}], format="json")

    assert again.status_code == 201
    assert again.json()["replaced"] == 1
    assert again.json()["created"] == 0
    assert _stored() == {"a1": "no"}
    assert Feedback.objects.get().received_at >= before


def test_csv_upload(ana: Any, churn: Any) -> None:
    response = ana.post(
        URL, {"file": _csv("request_id,actual\nc1,yes\nc2, no\n")}, format="multipart"
    )

    assert response.status_code == 201, response.content
    assert response.json()["received"] == 2
    assert _stored() == {"c1": "yes", "c2": "no"}


def test_regressor_values_are_numbers(ana: Any, team: Any) -> None:
    model = RegisteredModelFactory.create(name="spend", owner=team)
    ModelVersionFactory.create(model=model)  # a small regressor
    ok = ana.post(
        "/api/v1/models/spend/feedback",
        {"file": _csv("request_id,actual\ns1,12.5\ns2,-3\n")},
        format="multipart",
    )
    assert ok.status_code == 201, ok.content
    assert _stored() == {"s1": 12.5, "s2": -3.0}

    bad = ana.post(
        "/api/v1/models/spend/feedback", {"request_id": "s3", "actual": "high"}, format="json"
    )
    assert bad.status_code == 400
    assert "not a finite number" in bad.json()["detail"]
    assert "s3" not in _stored()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], "at least one"),
        ([{"request_id": "x1", "actual": "maybe"}], "not one of the model's classes"),
        ([{"actual": "yes"}], "request_id"),
        ([{"request_id": "", "actual": "yes"}], "request_id"),
        ([{"request_id": "x" * 65, "actual": "yes"}], "request_id"),
        ([{"request_id": "x1"}], "actual"),
        ([{"request_id": "x1", "actual": None}], "actual"),
        ([{"request_id": "x1", "actual": ["yes"]}], "actual"),
        ([{"request_id": "x1", "actual": "yes", "extra": 1}], "unknown field"),
        (["x1"], "must be an object"),
        (
            [{"request_id": "x1", "actual": "yes"}, {"request_id": "x1", "actual": "no"}],
            "more than once",
        ),
        ("just text", "Send"),
    ],
)
def test_bad_json_is_400_and_stores_nothing(ana: Any, churn: Any, body: Any, expected: str) -> None:
    # a good item first: a refusal stores none of them
    if isinstance(body, list) and body and isinstance(body[0], dict) and len(body) == 1:
        body = [{"request_id": "good", "actual": "yes"}, *body]
    response = ana.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    assert expected in response.json()["detail"]
    assert not Feedback.objects.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("request_id,label\nc1,yes\n", "missing column"),
        ("request_id,actual\nc1,yes,extra\nc2,no\n", "fields"),
        ("request_id,actual\nc1,maybe\n", "not one of the model's classes"),
        ("", "missing column"),
    ],
)
def test_bad_csv_is_400_and_stores_nothing(ana: Any, churn: Any, text: str, expected: str) -> None:
    response = ana.post(URL, {"file": _csv(text)}, format="multipart")

    assert response.status_code == 400, response.content
    assert expected in response.json()["detail"]
    assert not Feedback.objects.exists()


def test_multipart_without_file_is_400(ana: Any, churn: Any) -> None:
    response = ana.post(URL, {"other": "x"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["field"] == "file"


def test_other_team_and_readers_are_refused(django_user_model: Any, churn: Any) -> None:
    outsider = client_for(
        team_member(django_user_model, "eve", TeamFactory.create(name="other"), apps=("registry",))
    )
    reader = client_for(team_member(django_user_model, "rob", churn.model.owner, apps=()))
    body = {"request_id": "z1", "actual": "yes"}

    assert outsider.post(URL, body, format="json").status_code == 403
    assert reader.post(URL, body, format="json").status_code == 403
    assert not Feedback.objects.exists()


def test_unknown_model_is_404(ana: Any) -> None:
    response = ana.post(
        "/api/v1/models/nope/feedback", {"request_id": "a", "actual": 1}, format="json"
    )
    assert response.status_code == 404


def test_ids_logged_before_the_lookback_are_not_joined(ana: Any, churn: Any, settings: Any) -> None:
    settings.MLPLATFORM_FEEDBACK_LOOKBACK_DAYS = 1
    old = timezone.now() - timedelta(days=2)
    log_write(churn, rows_like_training(100, seed=2), at=old)

    response = ana.post(
        URL, {"request_id": f"r{old:%Y%m%d%H}-primary-0", "actual": "yes"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["joined"] == 0


def test_a_model_without_ready_versions_takes_labels_and_finite_numbers(
    ana: Any, team: Any
) -> None:
    RegisteredModelFactory.create(name="fresh", owner=team)
    url = "/api/v1/models/fresh/feedback"

    ok = ana.post(
        url,
        [{"request_id": "f1", "actual": "cat"}, {"request_id": "f2", "actual": 3}],
        format="json",
    )
    assert ok.status_code == 201, ok.content
    assert _stored() == {"f1": "cat", "f2": 3}

    for bad in ("x" * 201, " ", {"a": 1}):
        response = ana.post(url, {"request_id": "f3", "actual": bad}, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["field"] == "actual"
    nan = ana.post(url, '[{"request_id": "f3", "actual": NaN}]', content_type="application/json")
    assert nan.status_code == 400
    assert "f3" not in _stored()
