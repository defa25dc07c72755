"""Browser: a team member sees a firing alert on the model page, opens the Monitoring tab and
reads the drift heatmap (a cell's value on hover); the catalog flags a stale group. Every
chart is drawn by the server, so no request leaves the site (the `page` fixture fails on any).

With `MLPLATFORM_SCREENSHOTS=1` (`make screenshots`) it also writes
docs/ui/monitoring-desktop.png and -phone.png."""

import os
from pathlib import Path
from typing import Any

import pytest

from monitoring.models import Alert, AlertRule
from serving import selectors
from tests.conftest import log_in
from tests.e2e.pages import DESKTOP, PHONE
from tests.e2e.test_phone import HIDDEN_COLUMNS
from tests.factories import FeatureFactory, FeatureGroupFactory, ModelAliasFactory, UserFactory
from tests.monitoring.conftest import churn, churn_estimator, team
from tests.monitoring.test_pages import monitored

__all__ = ["churn", "churn_estimator", "team"]  # the monitored model's fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS_UI = Path(__file__).resolve().parents[2] / "docs" / "ui"
USER = ("mia", "pw-mia-123")


@pytest.fixture(autouse=True)
def _fresh_resolution() -> None:
    selectors.resolution_cache_clear()


def test_monitoring_tab_shows_the_heatmap_and_alerts_without_leaving_the_site(
    page: Any, churn: Any, team: Any
) -> None:
    # given a production version with six hours of figures, the last one shifted and alerting
    UserFactory.create(
        username=USER[0], password=USER[1], teams=[team], apps=("registry", "serving", "features")
    )
    ModelAliasFactory.create(version=churn, alias="production")
    windows = monitored(churn)
    rule = AlertRule.objects.create(model=churn.model, metric="psi", threshold=0.2)
    Alert.objects.create(
        rule=rule, version=churn, column="amount", value=0.71, window=windows[-1],
        message="amount: PSI 0.71 above 0.2",
    )  # fmt: skip
    group = FeatureGroupFactory.create(name="customer_stats", owner=team)
    FeatureFactory.create(group=group, name="spend_30d")
    Alert.objects.create(rule=AlertRule.objects.create(feature_group=group, metric="stale"))

    # when they open the model page, the badge arrives (htmx) and leads to the tab
    log_in(page, "/models/churn/", *USER)
    badge = page.locator("#alert-badge")
    badge.wait_for()
    assert badge.inner_text() == "1 alert firing"
    page.click("#monitoring-tab")
    page.wait_for_url("**/models/churn/monitoring/")

    # then the heatmap is drawn, column by window, with the shifted cell's value on hover
    heatmap = page.locator("#drift-heatmap svg.heatmap")
    assert heatmap.is_visible()
    assert heatmap.locator("rect.cell").count() == 18
    hot = heatmap.locator('rect.cell[data-value="0.71"]')
    hot.hover()
    assert hot.locator("title").text_content() == "amount · 2026-11-30 11:00: PSI 0.71"
    box = heatmap.bounding_box()
    assert box is not None
    assert box["width"] > 300
    assert page.locator("#alert-table tr[data-state=firing]").count() == 1
    assert page.locator('figure[data-column="amount"] svg.overlaid-histogram').is_visible()
    assert page.locator("#prediction-chart svg").is_visible()

    # and on a phone nothing is wider than the screen (the heatmap and tables scroll inside
    # their own boxes) and no table column is hidden
    page.set_viewport_size(PHONE)
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate(HIDDEN_COLUMNS) == []
    page.set_viewport_size(DESKTOP)

    # and the catalog flags the group with a firing alert
    page.goto("/features/")
    page.locator('[data-alert-group="customer_stats"] .group-alert').wait_for()

    if os.environ.get("MLPLATFORM_SCREENSHOTS") == "1":
        DOCS_UI.mkdir(parents=True, exist_ok=True)
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.goto("/models/churn/monitoring/")
            page.wait_for_load_state("networkidle")
            path = DOCS_UI / f"monitoring-{label}.png"
            page.screenshot(path=str(path), animations="disabled", caret="hide")
