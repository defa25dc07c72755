"""The demo: a nightly-loaded group, a feature service, an online store and a linked model."""

import pytest

pytestmark = pytest.mark.django_db


def test_demo_loads_once_and_predicts_by_entity_key(api_client, user):
    from features.demo import demo_load

    # When the demo is loaded twice
    first = list(demo_load(user=user))
    second = list(demo_load(user=user))
    # Then the second run creates nothing new
    assert any("customer_stats: 12000 rows" in line for line in first)
    assert not any("rows" in line and "customer_stats" in line for line in second)
    group = api_client.get("/api/v1/features/groups/customer_stats/").json()
    assert group["availability"] == {"daily_at": "02:00"}
    assert group["summary"]["rows"] == 12000
    # And the online store serves the feature service
    body = api_client.post(
        "/api/v1/features/online/",
        {"feature_service": "customer-churn", "entities": {"customer_id": [7]}},
        format="json",
    ).json()
    assert set(body["status"][0].values()) == {"present"}
    # And the model is linked to the service
    service = api_client.get("/api/v1/features/services/customer-churn/").json()
    assert service["model_versions"] == [{"model": "customer-churn", "version": 1}]
