"""Statistics never publish raw values of a column marked sensitive, and publish a string
column's frequent values only when its feature opts in (tags `sensitive`, `top_values`)."""

from typing import Any

import pytest

from tests.features.conftest import ingest, make_group

pytestmark = pytest.mark.django_db

ROWS = [
    {
        "customer_id": i,
        "event_timestamp": "2025-01-01T00:00:00Z",
        "income": 1000.0 * i + 0.25,
        "secret": f"tok-{i:04d}",
        "segment": "gold" if i % 2 else "silver",
        "city": "Lyon" if i % 3 else "Nantes",
    }
    for i in range(1, 13)
]


@pytest.fixture
def stats(api_client: Any, customer: Any) -> dict[str, Any]:
    make_group(
        api_client,
        name="people",
        features=[
            {"name": "income", "dtype": "float64", "tags": {"sensitive": True}},
            {"name": "secret", "dtype": "string", "tags": {"sensitive": True, "top_values": True}},
            {"name": "segment", "dtype": "string"},
            {"name": "city", "dtype": "string", "tags": {"top_values": True}},
        ],
    )
    assert ingest(api_client, "people", ROWS).status_code == 201
    listed = api_client.get("/api/v1/features/features/?group=people").json()["results"]
    return {f["name"]: f["statistics"] for f in listed}


def test_a_sensitive_column_publishes_counts_only(stats: dict[str, Any]) -> None:
    for name in ("income", "secret"):
        assert stats[name] == {"count": 12, "nulls": 0, "sensitive": True}


def test_string_top_values_are_opt_in(stats: dict[str, Any]) -> None:
    assert "top" not in stats["segment"]
    assert stats["segment"]["distinct"] == 2
    assert stats["city"]["top"] == [{"value": "Lyon", "count": 8}, {"value": "Nantes", "count": 4}]


def test_the_feature_page_shows_no_raw_value_of_a_sensitive_column(
    stats: dict[str, Any], client: Any, user: Any
) -> None:
    client.force_login(user)

    income = client.get("/features/groups/people/income/").content.decode()
    secret = client.get("/features/groups/people/secret/").content.decode()

    assert "12000.25" not in income
    assert "1000.25" not in income
    assert "tok-0001" not in secret


def test_marking_a_column_sensitive_takes_its_values_out_at_once(
    stats: dict[str, Any], api_client: Any
) -> None:
    assert stats["city"]["top"]

    response = api_client.patch(
        "/api/v1/features/features/people/city/", {"tags": {"sensitive": True}}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["statistics"] == {"count": 12, "nulls": 0, "sensitive": True}
