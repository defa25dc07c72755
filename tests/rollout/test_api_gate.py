"""The promotion gate through the API: refusal by absolute and relative rules, a version not
evaluated yet, the override (with and without the permission), all on a real worker."""

from typing import Any

import pytest
from django.contrib.auth.models import Permission

from registry.models import AliasChange
from rollout.models import Evaluation
from tests.conftest import client_for, team_member
from tests.factories import ModelAliasFactory, ModelVersionFactory
from tests.rollout.conftest import FEATURES, csv_bytes, labelled, upload, version_of, wait_evaluated

pytestmark = pytest.mark.django_db(transaction=True)


def _move(client: Any, model: str, version: int, **extra: Any) -> Any:
    return client.put(
        f"/api/v1/models/{model}/aliases/production/",
        {"version": version, **extra},
        format="json",
    )


def test_gate_refuses_then_override_needs_the_permission(
    celery_worker: Any,
    django_user_model: Any,
    team: Any,
    good_classifier: Any,
    poor_classifier: Any,
) -> None:
    # given: churn v1 (good) in production, v2 (poor) ready, a gate with both kinds of rule
    member = team_member(django_user_model, "ana", team, apps=("registry",))
    client = client_for(member)
    v1 = version_of(good_classifier, "churn")
    ModelAliasFactory.create(version=v1, alias="production")
    v2 = ModelVersionFactory.create(
        model=v1.model, estimator=poor_classifier, input_example=[dict.fromkeys(FEATURES, 0.5)]
    )
    created = upload(client, "churn", csv_bytes(labelled(600, seed=9)))
    assert created.status_code == 201, created.content
    dataset = created.json()
    assert dataset["rows"] == 600
    assert dataset["status"] == "ready"
    gate = client.put(
        "/api/v1/models/churn/gate/",
        {"dataset": dataset["id"], "rules": ["roc_auc >= 0.8", "accuracy >= production - 0.02"]},
        format="json",
    )
    assert gate.status_code == 200, gate.content
    assert gate.json()["rules"] == ["roc_auc >= 0.8", "accuracy >= production - 0.02"]
    # putting the gate queued production's and v2's evaluations
    wait_evaluated(v1)
    wait_evaluated(v2)

    # when: moving production to the poor version
    refused = _move(client, "churn", 2)

    # then: 409 naming both failed rules, nothing moved
    assert refused.status_code == 409, refused.content
    body = refused.json()
    assert body["failed"] == ["roc_auc >= 0.8", "accuracy >= production - 0.02"]
    assert "did not pass" in body["detail"]
    assert v1.model.aliases.get(alias="production").version_id == v1.pk
    # only the gated aliases (MLPLATFORM_GATED_ALIASES, default production) are gated
    staging = client.put("/api/v1/models/churn/aliases/staging/", {"version": 2}, format="json")
    assert staging.status_code == 200, staging.content

    # a reason without the permission changes nothing, and says what is needed
    reasoned = _move(client, "churn", 2, override_reason="hotfix")
    assert reasoned.status_code == 409
    assert "rollout.override_gate" in reasoned.json()["detail"]

    # with the permission and a reason, it moves, and the audit trail says override + reason
    member.user_permissions.add(Permission.objects.get(codename="override_gate"))
    forced = _move(
        client_for(django_user_model.objects.get(pk=member.pk)),
        "churn",
        2,
        override_reason="the old version is leaking memory",
    )
    assert forced.status_code == 200, forced.content
    change = AliasChange.objects.filter(model=v1.model, alias="production").order_by("-id").first()
    assert change is not None
    assert (change.kind, change.reason, change.to_version) == (
        "override",
        "the old version is leaking memory",
        2,
    )

    # the evaluations answer each rule's verdict
    answer = client.get("/api/v1/models/churn/versions/2/evaluations/").json()
    gated = next(entry for entry in answer["datasets"] if entry["gate"])
    # (production is v2 itself now, so the relative rule passes)
    assert [v["passed"] for v in gated["verdicts"]] == [False, True]


def test_not_evaluated_is_409_then_passes(
    celery_worker: Any, django_user_model: Any, team: Any, good_classifier: Any
) -> None:
    # given: a gate, and a version uploaded after it whose evaluation is not done
    member = team_member(django_user_model, "ana", team, apps=("registry",))
    client = client_for(member)
    v1 = version_of(good_classifier, "churn")
    created = upload(client, "churn", csv_bytes(labelled(300, seed=9)))
    gate = client.put(
        "/api/v1/models/churn/gate/",
        {"dataset": created.json()["id"], "rules": ["roc_auc >= production", "f1 > 0.5"]},
        format="json",
    )
    assert gate.status_code == 200, gate.content
    wait_evaluated(v1)
    Evaluation.objects.all().delete()  # as if never evaluated

    # when / then: 409 naming the queued job
    first = _move(client, "churn", 1)
    assert first.status_code == 409, first.content
    assert first.json()["job"]
    assert "not been evaluated" in first.json()["detail"]
    # then, once the job is done: passes (no production yet: the relative rule says so)
    wait_evaluated(v1)
    second = _move(client, "churn", 1)
    assert second.status_code == 200, second.content
    verdicts = client.get("/api/v1/models/churn/versions/1/evaluations/").json()["datasets"][0][
        "verdicts"
    ]
    assert verdicts[0]["passed"] is True
