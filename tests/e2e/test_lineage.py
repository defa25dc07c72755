"""Browser: walk the lineage by clicking, from a data source to a model version and back, at
desktop and phone widths; the catalog and the new pages fit a phone."""

from typing import Any

import pytest

from jobs.models import Job
from tests.conftest import log_in
from tests.factories import (
    DataSourceFactory,
    EntityFactory,
    FeatureFactory,
    FeatureGroupFactory,
    FeatureServiceFactory,
    JobFactory,
    ModelVersionFactory,
    TeamFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture
def chain(django_user_model: Any) -> dict[str, Any]:
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    team = TeamFactory.create(name="data")
    source = DataSourceFactory.create(name="payments-src", owner=team)
    entity = EntityFactory.create(name="customer", owner=team)
    group = FeatureGroupFactory.create(
        name="customer_stats", entity=entity, source=source, owner=team
    )
    spend = FeatureFactory.create(group=group, name="spend")
    service = FeatureServiceFactory.create(name="churn-svc", owner=team, features=[spend])
    version = ModelVersionFactory.create(model__name="churn", model__owner=team)
    version.feature_service = service
    version.save(update_fields=["feature_service"])
    batch = JobFactory.create(
        kind=Job.Kind.BATCH_SCORING, owner=team, params={"model": "churn", "version": 1}
    )
    return {"group": group, "feature": spend, "service": service, "version": version,
            "batch": batch}  # fmt: skip


def _node(page: Any, key: str) -> Any:
    return page.locator(f'svg.lineage a[data-key="{key}"]')


def _fits(page: Any, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("size", WIDTHS)
def test_walk_the_lineage_from_a_source_to_a_model_version_and_back(page, chain, size):
    width, height = WIDTHS[size]
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, "/features/sources/payments-src/")
    # Given the source's page: its graph reaches down to the model version
    assert page.locator("h1").inner_text() == "payments-src"
    assert _node(page, f"version:{chain['version'].pk}").count() == 1
    _fits(page, width)
    # When the reader clicks down the graph: group, feature, service, model version
    _node(page, f"group:{chain['group'].pk}").click()
    page.wait_for_url("**/features/groups/customer_stats/")
    _fits(page, width)
    _node(page, f"feature:{chain['feature'].pk}").click()
    page.wait_for_url("**/features/groups/customer_stats/spend/")
    _fits(page, width)
    _node(page, f"service:{chain['service'].pk}").click()
    page.wait_for_url("**/features/services/churn-svc/")
    assert page.locator("h1").inner_text() == "churn-svc"
    _fits(page, width)
    # the batch job of the version hangs off it
    assert _node(page, f"job:{chain['batch'].pk}").count() == 1
    _node(page, f"version:{chain['version'].pk}").click()
    page.wait_for_url("**/models/churn/**")
    assert "churn" in page.locator("h1").inner_text()
    # Then back up, by the links of each page: service, feature, group, source
    page.go_back()
    page.wait_for_url("**/features/services/churn-svc/")
    page.locator("table.features a", has_text="spend").click()
    page.wait_for_url("**/features/groups/customer_stats/spend/")
    page.locator("#group-link").click()
    page.wait_for_url("**/features/groups/customer_stats/")
    page.locator("td.sources a", has_text="payments-src").click()
    page.wait_for_url("**/features/sources/payments-src/")
    # and the entity page closes the loop from the group
    page.go_back()
    page.locator("#entity-link").click()
    page.wait_for_url("**/features/entities/customer/")
    assert _node(page, f"group:{chain['group'].pk}").count() == 1
    _fits(page, width)


@pytest.mark.parametrize("size", WIDTHS)
def test_catalog_and_jobs_lists_fit_and_sort(page, chain, size):
    width, height = WIDTHS[size]
    page.set_viewport_size({"width": width, "height": height})
    log_in(page, "/features/")
    assert page.locator("table.catalog td.fresh").first.inner_text() == "no data"
    _fits(page, width)
    page.locator("table.catalog th a", has_text="Feature").click()
    page.wait_for_url("**/features/?sort=name")
    page.locator("table.catalog th a", has_text="Feature").click()
    page.wait_for_url("**/features/?sort=-name")
    page.goto("/jobs/")
    _fits(page, width)
    page.locator("#jobs th a", has_text="Took").click()
    page.wait_for_url("**/jobs/?sort=-duration")
    assert page.locator(f'tr[data-job="{chain["batch"].pk}"] td.took').inner_text() == (
        "not started"
    )
    _fits(page, width)
