"""Browse the feature catalog to a feature page and see its histogram."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_browse_catalog_to_a_feature_histogram(page, django_user_model):
    # Given a feature group with data
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    api = _api(user)
    api.post(
        "/api/v1/features/entities/",
        {"name": "customer", "join_keys": ["customer_id"]},
        format="json",
    )
    api.post(
        "/api/v1/features/groups/",
        {
            "name": "customer_stats",
            "entity": "customer",
            "features": [{"name": "spend", "dtype": "float64", "description": "Monthly spend"}],
        },
        format="json",
    )
    import io

    rows = "customer_id,event_timestamp,spend\n" + "".join(
        f"{i},2025-01-01T00:00:00Z,{i * 1.5}\n" for i in range(50)
    )
    upload = io.BytesIO(rows.encode())
    upload.name = "rows.csv"
    response = api.post(
        "/api/v1/features/groups/customer_stats/ingest", {"file": upload}, format="multipart"
    )
    assert response.status_code == 201
    # When a user logs in, searches the catalog and follows the links
    log_in(page, "/features/")
    page.fill("input[name=q]", "monthly")
    page.click("form.filters button[type=submit]")
    page.click("table.catalog >> text=spend")
    page.wait_for_url("**/features/groups/customer_stats/spend/")
    # Then the feature page shows its statistics and a drawn histogram
    assert page.locator("h1").inner_text() == "spend"
    histogram = page.locator("svg.histogram")
    assert histogram.is_visible()
    assert histogram.locator("rect.bin").count() == 20
    assert "Monthly spend" in page.locator("p.description").inner_text()
