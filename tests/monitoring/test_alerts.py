"""Alert rules through the API: listed, replaced as a whole list (a rule kept keeps its alerts),
checked with nothing changed on a refusal; the defaults a model gets with its first reference
profile; the hourly beat entry that runs monitoring for every model with traffic."""

import io
import time
from importlib import import_module
from typing import Any

import pytest
from django.apps import apps
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from jobs.models import Job
from monitoring import tasks
from monitoring.models import Alert, AlertRule
from tests.conftest import client_for, team_member
from tests.factories import TeamFactory
from tests.monitoring.conftest import log_write, rows_like_training

URL = "/api/v1/models/churn/alert-rules/"


@pytest.fixture
def ana(django_user_model: Any, team: Any) -> Any:
    return client_for(team_member(django_user_model, "ana", team, apps=("registry",)))


def _rules() -> set[tuple[str, str, float, bool]]:
    return set(AlertRule.objects.values_list("metric", "column", "threshold", "enabled"))


@pytest.mark.django_db
def test_rules_are_replaced_as_a_list(ana: Any, churn: Any) -> None:
    assert ana.get(URL).json() == []

    first = ana.put(
        URL,
        [
            {"metric": "psi", "threshold": 0.2},
            {"metric": "ks", "column": "amount", "threshold": 0.3, "enabled": False},
            {"metric": "prediction_psi", "column": "proba__yes", "threshold": 0.25},
        ],
        format="json",
    )
    assert first.status_code == 200, first.content
    assert [(r["metric"], r["column"]) for r in first.json()] == [
        ("ks", "amount"),
        ("prediction_psi", "proba__yes"),
        ("psi", ""),
    ]
    kept = AlertRule.objects.get(metric="psi")
    alert = Alert.objects.create(rule=kept, version=churn, column="amount", value=0.5)

    # replaced: psi kept (with its alert) at a new threshold, the others gone, one added
    second = ana.put(
        URL,
        [{"metric": "psi", "threshold": 0.3}, {"metric": "null_rate", "threshold": 0.01}],
        format="json",
    )
    assert second.status_code == 200, second.content
    assert _rules() == {("psi", "", 0.3, True), ("null_rate", "", 0.01, True)}
    assert AlertRule.objects.get(metric="psi").pk == kept.pk
    assert Alert.objects.filter(pk=alert.pk).exists()
    assert ana.get(URL).json() == second.json()

    assert ana.put(URL, [], format="json").json() == []
    assert not AlertRule.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"metric": "psi", "threshold": 0.2}, "list of rules"),
        ([{"metric": "stale", "threshold": 2}], "metric"),
        ([{"metric": "entropy", "threshold": 2}], "metric"),
        ([{"metric": "psi"}], "threshold"),
        ([{"metric": "psi", "threshold": -1}], "threshold"),
        ([{"metric": "psi", "threshold": "high"}], "threshold"),
        ([{"metric": "psi", "threshold": True}], "threshold"),
        ([{"metric": "psi", "column": "nope", "threshold": 0.2}], "no column 'nope'"),
        ([{"metric": "prediction_psi", "column": "amount", "threshold": 0.2}], "no column"),
        ([{"metric": "psi", "threshold": 0.2, "enabled": "yes"}], "enabled"),
        ([{"metric": "psi", "threshold": 0.2, "severity": "high"}], "unknown field"),
        ([{"metric": "psi", "column": 3, "threshold": 0.2}], "column"),
        (["psi"], "must be an object"),
        (
            [{"metric": "psi", "threshold": 0.2}, {"metric": "psi", "threshold": 0.3}],
            "given twice",
        ),
    ],
)
def test_bad_rules_are_400_and_change_nothing(
    ana: Any, churn: Any, rules: Any, expected: str
) -> None:
    ana.put(URL, [{"metric": "null_rate", "threshold": 0.05}], format="json")
    before = _rules()

    response = ana.put(URL, rules, format="json")

    assert response.status_code == 400, response.content
    assert expected in response.json()["detail"]
    assert _rules() == before


@pytest.mark.django_db
def test_rules_need_write_rights_and_the_team(django_user_model: Any, churn: Any) -> None:
    reader = client_for(team_member(django_user_model, "rob", churn.model.owner, apps=()))
    outsider = client_for(
        team_member(django_user_model, "eve", TeamFactory.create(name="other"), apps=("registry",))
    )
    body = [{"metric": "psi", "threshold": 0.2}]

    assert reader.get(URL).status_code == 200
    assert reader.put(URL, body, format="json").status_code == 403
    assert outsider.get(URL).status_code == 403
    assert outsider.put(URL, body, format="json").status_code == 403
    assert not AlertRule.objects.exists()


@pytest.mark.django_db
def test_first_reference_brings_default_rules_once(ana: Any, churn: Any, settings: Any) -> None:
    settings.MLPLATFORM_ALERT_PSI = 0.3

    def upload() -> None:
        handle = io.BytesIO(rows_like_training(500, seed=2).to_csv(index=False).encode())
        handle.name = "reference.csv"
        response = ana.post(
            "/api/v1/models/churn/versions/1/reference", {"file": handle}, format="multipart"
        )
        assert response.status_code in (200, 201), response.content

    upload()
    assert _rules() == {
        ("psi", "", 0.3, True),
        ("null_rate", "", 0.05, True),
        ("accuracy_drop", "", 0.05, True),
    }
    # the user's choice stands: a new reference does not bring the defaults back
    ana.put(URL, [{"metric": "ks", "threshold": 0.4}], format="json")
    upload()
    assert _rules() == {("ks", "", 0.4, True)}


@pytest.mark.django_db(transaction=True)
def test_hourly_beat_entry_runs_models_with_traffic(
    celery_worker: Any, churn: Any, team: Any
) -> None:
    # (Rows written by migrations are flushed by earlier transactional tests: run its step.)
    import_module("monitoring.migrations.0002_hourly_run").create_schedule(apps, None)
    entry = PeriodicTask.objects.get(task="monitoring.tasks.monitoring_run_all")
    assert entry.enabled
    assert entry.crontab is not None
    assert (entry.crontab.minute, entry.crontab.hour) == ("5", "*")
    log_write(churn, rows_like_training(300, seed=4), at=timezone.now())

    tasks.monitoring_run_all.delay()  # as beat sends it

    deadline = time.monotonic() + 60
    job = None
    while time.monotonic() < deadline:
        job = Job.objects.filter(kind=Job.Kind.MONITORING, status=Job.Status.SUCCEEDED).first()
        if job is not None:
            break
        time.sleep(0.3)
    assert job is not None, "no monitoring job ran"
    assert job.params["model"] == "churn"
    assert job.owner == team
    assert job.result["windows"] >= 2
    assert churn.monitoring_windows.filter(granularity="day").get().rows == 300
