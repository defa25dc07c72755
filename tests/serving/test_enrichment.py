"""Feature-store hook: a version linked to a feature service fills missing inputs by entity key,
read from the real online store (the configured one: the database table, or Redis in the
services pass), whose values are written by the ingestion and materialisation services."""

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from django.utils import timezone

from features import online, services
from features.models import FeatureGroup
from registry.models import ModelVersion
from tests.factories import (
    EntityFactory,
    FeatureFactory,
    FeatureGroupFactory,
    FeatureServiceFactory,
)

pytestmark = pytest.mark.django_db

# The `reg` model: 1.0 * f0 - 2.0 * f1 + 0.5 * f2 + 3.


def expected(f0: float, f1: float, f2: float) -> float:
    return 1.0 * f0 - 2.0 * f1 + 0.5 * f2 + 3


def group_with_values(name: str, key: str, rows: list[dict[str, Any]]) -> FeatureGroup:
    """A group of float features on an entity keyed by `key`, its `rows` ingested and
    materialised into the online store."""
    entity = EntityFactory.create(name=key.removesuffix("_id"), join_keys=[key])
    group: FeatureGroup = FeatureGroupFactory.create(name=name, entity=entity)
    columns = [column for column in rows[0] if column != key]
    for position, column in enumerate(columns):
        FeatureFactory.create(group=group, name=column, position=position)
    online.store().clear(group.pk)  # a Redis store outlives the test database
    event = (timezone.now() - timedelta(minutes=5)).isoformat()
    data = pd.DataFrame([{**row, "event_timestamp": event} for row in rows]).to_csv(index=False)
    services.ingestion_start(group=group, file=io.BytesIO(data.encode()), size=len(data))
    services.materialise_group(group=group)
    return group


@pytest.fixture
def risk(make_version: Callable[..., ModelVersion]) -> ModelVersion:
    """Model `risk` (inputs f0, f1, f2), linked to service `risk-features` = stats:f1, stats:f2,
    whose online values are customer 1: (0.5, -1.0); customer 2: f1 only."""
    stats = group_with_values(
        "stats",
        "customer_id",
        [{"customer_id": 1, "f1": 0.5, "f2": -1.0}, {"customer_id": 2, "f1": 0.1, "f2": None}],
    )
    version = make_version("reg", name="risk")
    version.feature_service = FeatureServiceFactory.create(
        name="risk-features", features=list(stats.features.all())
    )
    version.save()
    return version


def predict(api_client: Any, *rows: dict[str, Any]) -> Any:
    return api_client.post("/api/v1/models/risk/predict", {"instances": list(rows)}, format="json")


def test_entity_key_and_request_time_column_are_enough(api_client, risk):
    response = predict(api_client, {"customer_id": 1, "f0": 2.0})

    assert response.status_code == 200, response.json()
    assert response.json()["predictions"][0] == pytest.approx(expected(2.0, 0.5, -1.0))


def test_a_value_the_request_sends_is_not_read_from_the_store(api_client, risk):
    response = predict(api_client, {"customer_id": 1, "f0": 2.0, "f1": 0.0})

    assert response.status_code == 200, response.json()
    assert response.json()["predictions"][0] == pytest.approx(expected(2.0, 0.0, -1.0))


@pytest.mark.parametrize("customer", [2, 3], ids=["value-missing", "entity-unknown"])
def test_missing_feature_value_names_column_and_entity(api_client, risk, customer):
    response = predict(api_client, {"customer_id": customer, "f0": 2.0})

    assert response.status_code == 400
    assert response.json()["field"] == ("f2" if customer == 2 else "f1")
    assert f"customer_id={customer}" in response.json()["detail"]


def test_missing_entity_key_is_400(api_client, risk):
    response = predict(api_client, {"f0": 2.0})

    assert response.status_code == 400
    assert "customer_id" in response.json()["detail"]


def test_a_feature_service_change_is_seen_by_the_next_prediction(api_client, risk):
    # given a prediction that read the service's entity keys (customer_id)
    assert predict(api_client, {"customer_id": 1, "f0": 2.0}).status_code == 200
    # when the service now takes f2 from a group on another entity (card_id)
    group_with_values("cards", "card_id", [{"card_id": 7, "f2": 4.0}])
    assert risk.feature_service is not None
    services.service_update(service=risk.feature_service, features=["stats:f1", "cards:f2"])

    # then the very next prediction needs, and reads by, both keys: no restart, no wait
    response = predict(api_client, {"customer_id": 1, "card_id": 7, "f0": 2.0})
    assert response.status_code == 200, response.json()
    assert response.json()["predictions"][0] == pytest.approx(expected(2.0, 0.5, 4.0))
    without_card = predict(api_client, {"customer_id": 1, "f0": 2.0})
    assert without_card.status_code == 400
    assert "card_id" in without_card.json()["detail"]


def test_mlflow_routes_keep_the_entity_key_and_ignore_other_columns(api_client, risk):
    # Given rows with the entity key, a request-time input and an id the model does not take
    frame = pd.DataFrame([{"id": "r1", "customer_id": 1, "f0": 2.0}])
    url = "/mlflow/models/risk/invocations"

    answers = [
        api_client.post(url, {"dataframe_records": frame.to_dict("records")}, format="json"),
        api_client.post(url, frame.to_csv(), content_type="text/csv"),
        api_client.post(url, frame.to_parquet(), content_type="application/vnd.apache.parquet"),
    ]

    for response in answers:
        assert response.status_code == 200, response.json()
        assert response.json()["predictions"][0] == pytest.approx(expected(2.0, 0.5, -1.0))
