"""The same gate through the admin, the pages and the register_model command, and the rollout
page (candidate beside production, verdicts, charts, evaluate now); on a real worker."""

import html
from io import StringIO
from pathlib import Path
from typing import Any

import joblib
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from registry.models import AliasChange, ModelAlias
from rollout.models import Evaluation
from tests.conftest import client_for, team_member
from tests.factories import ModelAliasFactory, ModelVersionFactory, TeamFactory
from tests.rollout.conftest import FEATURES, csv_bytes, labelled, upload, version_of, wait_evaluated

pytestmark = pytest.mark.django_db(transaction=True)
RULE = "roc_auc >= 0.8"


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response: Any) -> str:
    return html.unescape(response.content.decode())


def _production(model: Any) -> int:
    return ModelAlias.objects.get(model=model, alias="production").version.version


def _last_change(model: Any) -> AliasChange:
    found = AliasChange.objects.filter(model=model, alias="production").order_by("-id").first()
    assert found is not None
    return found


def _admin_form(model: Any, **extra: Any) -> dict[str, Any]:
    return {
        "description": model.description,
        "owner": model.owner_id,
        "tags": "{}",
        "aliases-TOTAL_FORMS": "0",
        "aliases-INITIAL_FORMS": "0",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "alias_name": "production",
        "alias_version": "2",
        **extra,
    }


def test_gate_through_admin_pages_and_command(
    celery_worker: Any,
    django_user_model: Any,
    team: Any,
    good_classifier: Any,
    poor_classifier: Any,
    tmp_path: Path,
) -> None:
    # given: churn v1 (good) in production, v2 (poor), a gate, both evaluated
    ana = team_member(django_user_model, "ana", team, apps=("registry",))
    ana.is_staff = True
    ana.save()
    boss = team_member(django_user_model, "boss", team, apps=("registry", "rollout"))
    boss.is_staff = True
    boss.save()
    assert boss.has_perm("rollout.override_gate")
    v1 = version_of(good_classifier, "churn")
    model = v1.model
    ModelAliasFactory.create(version=v1, alias="production")
    v2 = ModelVersionFactory.create(
        model=model, estimator=poor_classifier, input_example=[dict.fromkeys(FEATURES, 0.5)]
    )
    api = client_for(ana)
    dataset = upload(api, "churn", csv_bytes(labelled(400, seed=5))).json()["id"]
    assert (
        api.put(
            "/api/v1/models/churn/gate/", {"dataset": dataset, "rules": [RULE]}, format="json"
        ).status_code
        == 200
    )
    wait_evaluated(v1)
    wait_evaluated(v2)

    # the admin: a form error listing the failed rule; a reason without the permission: still
    # refused, saying so; with it: moved, recorded as an override
    admin_url = f"/admin/registry/registeredmodel/{model.pk}/change/"
    refused = _browser(ana).post(admin_url, _admin_form(model))
    assert refused.status_code == 200
    assert RULE in text(refused)
    reasoned = _browser(ana).post(admin_url, _admin_form(model, alias_override_reason="why not"))
    assert "rollout.override_gate" in text(reasoned)
    assert _production(model) == 1
    moved = _browser(boss).post(admin_url, _admin_form(model, alias_override_reason="urgent fix"))
    assert moved.status_code == 302
    assert _production(model) == 2
    assert (_last_change(model).kind, _last_change(model).reason) == ("override", "urgent fix")
    # a rollback is never gated
    assert api.post("/api/v1/models/churn/aliases/production/rollback").status_code == 200
    assert _production(model) == 1

    # the pages: 409 with the failed rule; the reason field only for who may override
    form = {"action": "set", "alias": "production", "version": "2", "confirm": "1"}
    page = _browser(ana).post("/models/churn/aliases/", form)
    assert page.status_code == 409
    body = text(page)
    assert 'id="gate-failed"' in body
    assert RULE in body
    assert "override-reason" not in body
    offered = _browser(boss).post("/models/churn/aliases/", form)
    assert "override-reason" in text(offered)
    done = _browser(boss).post("/models/churn/aliases/", {**form, "override_reason": "on call"})
    assert done.status_code == 302
    assert (_last_change(model).kind, _last_change(model).reason) == ("override", "on call")
    api.post("/api/v1/models/churn/aliases/production/rollback")

    # the rollout page: v2 beside production, metric deltas, the failed verdict, charts
    rollout = _browser(ana).get("/models/churn/rollout/?candidate=2")
    assert rollout.status_code == 200
    body = text(rollout)
    assert 'id="metric-table"' in body
    assert 'data-metric="roc_auc"' in body
    assert 'data-passed="false"' in body
    assert 'id="roc-chart"' in body
    assert "false positive rate" in body
    assert 'id="pr-chart"' in body
    rival = team_member(
        django_user_model, "eve", TeamFactory.create(name="rivals"), apps=("registry",)
    )
    assert _browser(rival).get("/models/churn/rollout/").status_code == 403
    assert (
        _browser(rival).post("/models/churn/rollout/evaluate", {"version": "2"}).status_code == 403
    )
    before = Evaluation.objects.filter(version=v2).count()
    again = _browser(ana).post("/models/churn/rollout/evaluate", {"version": "2"})
    assert again.status_code == 302
    assert Evaluation.objects.filter(version=v2).count() == before + 1
    wait_evaluated(v2)

    # a version made ready is evaluated at once when its model has a gate
    artifact = tmp_path / "poor.joblib"
    joblib.dump(poor_classifier, artifact)
    call_command("register_model", "churn", str(artifact), "--wait", stdout=StringIO())
    assert Evaluation.objects.filter(version__model=model, version__version=3).exists()

    # the command: waits for the new version's evaluation, then lists the failed rule
    command = ["register_model", "churn", str(artifact), "--alias", "production", "--wait"]
    with pytest.raises(CommandError, match=r"failed: roc_auc >= 0\.8"):
        call_command(*command, "--timeout", "60", stdout=StringIO())
    assert _production(model) == 1
    with pytest.raises(CommandError, match=r"rollout\.override_gate"):
        call_command(*command, "--override-reason", "x", "--user", "ana", stdout=StringIO())
    out = StringIO()
    call_command(*command, "--override-reason", "cli hotfix", "--user", "boss", stdout=out)
    assert "production → v" in out.getvalue()
    assert (_last_change(model).kind, _last_change(model).reason) == ("override", "cli hotfix")
