"""Feature-store hook: a version linked to a feature service fills missing inputs by entity key.

The online store is replaced by a double here; the real one is exercised by the feature store.
"""

import sys
import types

import pytest

from features.models import Entity, Feature, FeatureGroup, FeatureService

pytestmark = pytest.mark.django_db


@pytest.fixture
def linked(make_version, monkeypatch):
    version = make_version("reg", name="risk")
    entity = Entity.objects.create(name="customer", join_keys=["customer_id"])
    group = FeatureGroup.objects.create(name="stats", entity=entity)
    service = FeatureService.objects.create(name="risk-features")
    service.features.set(
        [Feature.objects.create(group=group, name=name, dtype="float64") for name in ("f1", "f2")]
    )
    version.feature_service = service
    version.save()
    store: dict[int, dict[str, float | None]] = {
        1: {"f1": 0.5, "f2": -1.0},
        2: {"f1": 0.1, "f2": None},
    }
    calls = []

    def online_rows(*, feature_service, entity_rows):
        calls.append((feature_service.name, entity_rows))
        return [dict(store.get(row["customer_id"], {})) for row in entity_rows]

    double = types.ModuleType("features.online")
    double.online_rows = online_rows  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "features.online", double)
    return calls


def test_entity_key_and_request_time_column_are_enough(api_client, linked):
    response = api_client.post(
        "/api/v1/models/risk/predict",
        {"instances": [{"customer_id": 1, "f0": 2.0}]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    expected = 2.0 * 1 + 0.5 * -2 + -1.0 * 0.5 + 3
    assert response.json()["predictions"][0] == pytest.approx(expected)
    assert linked == [("risk-features", [{"customer_id": 1}])]


def test_missing_feature_value_names_column_and_entity(api_client, linked):
    response = api_client.post(
        "/api/v1/models/risk/predict",
        {"instances": [{"customer_id": 2, "f0": 2.0}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["field"] == "f2"
    assert "customer_id=2" in response.json()["detail"]


def test_missing_entity_key_is_400(api_client, linked):
    response = api_client.post(
        "/api/v1/models/risk/predict", {"instances": [{"f0": 2.0}]}, format="json"
    )

    assert response.status_code == 400
    assert "customer_id" in response.json()["detail"]
