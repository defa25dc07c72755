"""Bad datasets and bad rules are 400s naming the problem, nothing stored; another team gets
nothing."""

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from rollout.models import EvaluationDataset, Gate
from tests.conftest import client_for, team_member
from tests.factories import TeamFactory
from tests.rollout.conftest import csv_bytes, labelled, parquet_bytes, upload, version_of


@pytest.fixture
def churn(db: Any, good_classifier: Any) -> Any:
    return version_of(good_classifier, "churn")


@pytest.fixture
def client(django_user_model: Any, team: Any) -> Any:
    return client_for(team_member(django_user_model, "ana", team, apps=("registry",)))


def _stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "evaluation-datasets"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize(
    ("data", "label", "expected"),
    [
        (b"", "churned", "empty"),
        (b"age,income,tenure,churned\n", "churned", "no data rows"),
        (b"age,income,tenure,churned\n1,2,3,yes\n4,5\n", "churned", "line 3"),
        (b"\xff\xfe\x00garbled\x00\x01", "churned", "not a readable"),
        (b"PAR1 not really parquet", "churned", "not a readable"),
        (None, "nope", "'nope' is not a column"),
        ("missing-input", "churned", "tenure"),
    ],
)
def test_bad_datasets_are_400_and_store_nothing(
    churn: Any, client: Any, data: Any, label: str, expected: str
) -> None:
    frame = labelled(20)
    if data is None:
        data = csv_bytes(frame)
    elif data == "missing-input":
        data = csv_bytes(frame.drop(columns=["tenure"]))
    response = upload(client, "churn", data, label=label)
    assert response.status_code == 400, response.content
    assert expected in response.json()["detail"]
    assert not EvaluationDataset.objects.exists()
    assert _stored_files() == []


def test_upload_lists_gets_and_deletes(
    churn: Any, client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    created = upload(client, "churn", parquet_bytes(labelled(30)), name="x.parquet").json()
    assert created["columns"][:3] == ["age", "income", "tenure"]
    assert created["source"] == "upload"
    assert created["rows"] == 30
    listed = client.get("/api/v1/models/churn/evaluation-datasets/").json()
    assert [d["id"] for d in listed["results"]] == [created["id"]]
    one = client.get(f"/api/v1/models/churn/evaluation-datasets/{created['id']}/")
    assert one.json()["label_column"] == "churned"
    assert len(_stored_files()) == 1
    with django_capture_on_commit_callbacks(execute=True):
        gone = client.delete(f"/api/v1/models/churn/evaluation-datasets/{created['id']}/")
    assert gone.status_code == 204
    assert not EvaluationDataset.objects.exists()
    assert _stored_files() == []


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ("roc_auc >= ", "is not a rule"),
        ("roc_auc => 0.9", "is not a rule"),
        ("roc_auc >= production * 2", "is not a rule"),
        ("__import__('os') >= 1", "is not a rule"),
        ("auc >= 0.9", "unknown metric 'auc'"),
        ("rmse <= 3", "not measured for a classification model"),
    ],
)
def test_rule_errors_are_400_naming_the_rule(
    churn: Any, client: Any, rule: str, named: str
) -> None:
    dataset = upload(client, "churn", csv_bytes(labelled(20))).json()["id"]
    response = client.put(
        "/api/v1/models/churn/gate/",
        {"dataset": dataset, "rules": ["accuracy >= 0.5", rule]},
        format="json",
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert named in body["detail"]
    assert body["rule"] == rule
    assert not Gate.objects.exists()


def test_gate_on_unknown_dataset_is_404(churn: Any, client: Any) -> None:
    response = client.put(
        "/api/v1/models/churn/gate/", {"dataset": 999, "rules": ["f1 > 0.5"]}, format="json"
    )
    assert response.status_code == 404


def test_another_team_gets_nothing(churn: Any, client: Any, django_user_model: Any) -> None:
    dataset = upload(client, "churn", csv_bytes(labelled(20))).json()["id"]
    client.put(
        "/api/v1/models/churn/gate/", {"dataset": dataset, "rules": ["f1 > 0.5"]}, format="json"
    )
    rival = client_for(
        team_member(django_user_model, "eve", TeamFactory.create(name="rivals"), apps=("registry",))
    )
    base = "/api/v1/models/churn"
    reads = [
        rival.get(f"{base}/evaluation-datasets/"),
        rival.get(f"{base}/evaluation-datasets/{dataset}/"),
        rival.get(f"{base}/gate/"),
        rival.get(f"{base}/versions/1/evaluations/"),
    ]
    writes = [
        upload(rival, "churn", csv_bytes(labelled(20))),
        rival.delete(f"{base}/evaluation-datasets/{dataset}/"),
        rival.put(f"{base}/gate/", {"dataset": dataset, "rules": ["f1 > 0"]}, format="json"),
        rival.delete(f"{base}/gate/"),
        rival.post(f"{base}/versions/1/evaluations/", {}, format="json"),
    ]
    assert [r.status_code for r in reads + writes] == [403] * 9
    assert "data" in reads[0].json()["detail"]
    assert EvaluationDataset.objects.count() == 1
    assert Gate.objects.get().rules == ["f1 > 0.5"]


def test_gate_get_delete_and_its_dataset_is_kept_while_used(churn: Any, client: Any) -> None:
    dataset = upload(client, "churn", csv_bytes(labelled(20))).json()["id"]
    assert client.get("/api/v1/models/churn/gate/").status_code == 404
    put = client.put(
        "/api/v1/models/churn/gate/",
        {"dataset": dataset, "rules": ["f1 >  0.5", "p95_latency_ms <= 1.2 * production"]},
        format="json",
    )
    assert put.status_code == 200, put.content
    gate = client.get("/api/v1/models/churn/gate/").json()
    assert gate["rules"] == ["f1 > 0.5", "p95_latency_ms <= 1.2 * production"]
    assert gate["dataset"]["id"] == dataset
    refused = client.delete(f"/api/v1/models/churn/evaluation-datasets/{dataset}/")
    assert refused.status_code == 409
    assert "gate" in refused.json()["detail"]
    assert client.delete("/api/v1/models/churn/gate/").status_code == 204
    assert client.delete("/api/v1/models/churn/gate/").status_code == 404
    assert client.delete(f"/api/v1/models/churn/evaluation-datasets/{dataset}/").status_code == 204
