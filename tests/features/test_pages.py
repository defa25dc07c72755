"""Catalog pages: search and filters, group page, feature page with its histogram, training set."""

from typing import Any

import pytest
from django.contrib.auth.models import Group

from tests.features.conftest import csv_file, ingest, make_group

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(api_client: Any, customer: dict[str, Any], user: Any) -> None:
    user.groups.add(Group.objects.create(name="risk"))  # a group goes to one of one's teams
    make_group(
        api_client,
        name="customer_stats",
        description="Spending behaviour",
        features=[
            {"name": "spend", "dtype": "float64", "description": "Thirty-day spend in euros"},
            {
                "name": "segment",
                "dtype": "string",
                "description": "Marketing segment",
                "tags": {"top_values": True},  # frequent values of strings are opt-in
            },
        ],
        tasks=["classification"],
        tags={"pii": "no"},
        owner="risk",
        availability={"daily_at": "02:00"},
    )
    make_group(
        api_client,
        name="web",
        features=[{"name": "visits", "dtype": "int64"}],
        tasks=["regression"],
    )
    rows = [
        {"customer_id": i, "event_timestamp": "2025-01-01T00:00:00Z", "spend": float(i),
         "segment": "gold" if i % 2 else "silver"}
        for i in range(1, 21)
    ]  # fmt: skip
    assert ingest(api_client, "customer_stats", rows).status_code == 201


@pytest.fixture
def browser_client(client: Any, user: Any) -> Any:
    client.force_login(user)
    return client


def test_catalog_requires_login(client):
    response = client.get("/features/")
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("", ["spend", "segment", "visits"], []),
        ("?q=euros", ["spend"], ["visits", "segment"]),
        ("?task=regression", ["visits"], ["spend"]),
        ("?tag=pii%3Dno", ["spend", "segment"], ["visits"]),
        ("?owner=risk", ["spend"], ["visits"]),
        ("?entity=customer&q=visits", ["visits"], ["spend"]),
    ],
)
def test_catalog_search_and_filters(browser_client, catalog, query, shown, hidden):
    page = browser_client.get(f"/features/{query}").content.decode()
    for name in shown:
        assert f">{name}</a>" in page
    for name in hidden:
        assert f">{name}</a>" not in page


def test_group_page_shows_schema_freshness_and_rule(browser_client, catalog):
    page = browser_client.get("/features/groups/customer_stats/").content.decode()
    assert "loaded nightly at 02:00 UTC" in page
    assert "20 in 1 partition" in page
    # 2025-01-01T00:00 with a nightly 02:00 load becomes available at 02:00 the same night
    assert "newest row available 2025-01-01 02:00:00 UTC" in page
    assert "Thirty-day spend in euros" in page


def test_feature_page_shows_statistics_and_histogram(browser_client, catalog, api_client):
    api_client.post(
        "/api/v1/features/services/",
        {"name": "churn-svc", "features": ["customer_stats:spend"], "owner": "risk"},
        format="json",
    )
    page = browser_client.get("/features/groups/customer_stats/spend/").content.decode()
    assert '<svg class="chart histogram"' in page
    assert page.count('<rect class="bin"') == 20
    assert "churn-svc" in page
    string_page = browser_client.get("/features/groups/customer_stats/segment/").content.decode()
    assert "gold" in string_page


def test_unknown_feature_page_is_404(browser_client, catalog):
    assert browser_client.get("/features/groups/customer_stats/nope/").status_code == 404


def test_training_set_page_downloads_csv(browser_client, catalog):
    response = browser_client.post(
        "/features/training-set/",
        {
            "features": "customer_stats:spend",
            "entity_file": csv_file("customer_id,event_timestamp\n3,2025-01-02T00:00:00Z\n"),
            "format": "csv",
        },
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.decode().splitlines()[1].endswith(",3.0")


def test_training_set_page_shows_errors(browser_client, catalog):
    response = browser_client.post(
        "/features/training-set/",
        {
            "features": "customer_stats:spend",
            "entity_file": csv_file("id,event_timestamp\n3,2025-01-02T00:00:00Z\n"),
            "format": "csv",
        },
    )
    assert response.status_code == 200
    assert "customer_id" in response.content.decode()
