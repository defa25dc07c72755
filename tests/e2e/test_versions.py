"""Browser: a version's page, versions ticked and compared (chart and best value), an alias
promoted after a confirmation and rolled back (the API sees each move), Try-it on a version
that is not the default and on a linked model by entity key; at desktop and phone widths."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from registry.models import ModelAlias, ModelVersion
from serving import selectors
from tests.conftest import log_in
from tests.factories import (
    FeatureServiceFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    TeamFactory,
    UserFactory,
)
from tests.serving.conftest import _fit_all
from tests.serving.test_enrichment import group_with_values

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}
PASSWORD = "pw-dana-12345"


@pytest.fixture(autouse=True)
def _fresh_resolution(settings: Any) -> None:
    settings.MLPLATFORM_ALIAS_TTL_SECONDS = 0
    selectors.resolution_cache_clear()


@pytest.fixture
def dana() -> Any:
    """A member of the team `data` (which owns the factories' models) with the registry's
    permissions."""
    return UserFactory.create(
        username="dana",
        password=PASSWORD,
        teams=[TeamFactory.create(name="data")],
        apps=("registry",),
    )


@pytest.fixture
def churn() -> list[ModelVersion]:
    """`churn` v1..v3 of the iris classifier, each reporting accuracy (v2 best) and log loss
    (v3 best); production on v3."""
    estimator, example = _fit_all()["iris"]
    metrics = [
        {"accuracy": 0.81, "log_loss": 0.52},
        {"accuracy": 0.93, "log_loss": 0.41},
        {"accuracy": 0.88, "log_loss": 0.33},
    ]
    versions = [
        ModelVersionFactory.create(
            model__name="churn",
            version=number,
            estimator=estimator,
            input_example=example,
            metrics=metrics[number - 1],
            library_versions={"sklearn": "1.9.1", "numpy": "2.3.0", "python": "3.11"},
        )
        for number in (1, 2, 3)
    ]
    ModelAlias.objects.create(model=versions[0].model, alias="production", version=versions[2])
    return versions


def _fits(page: Any, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def _api_alias(dana: Any, alias: str) -> int | None:
    client = APIClient()
    client.force_authenticate(dana)
    response = client.get("/api/v1/models/churn/aliases/")
    assert response.status_code == 200
    found = [a for a in response.json()["results"] if a["alias"] == alias]
    return found[0]["version"] if found else None


@pytest.mark.parametrize("width", list(WIDTHS), ids=list(WIDTHS))
def test_version_page(page: Any, dana: Any, churn: list[ModelVersion], width: str) -> None:
    w, h = WIDTHS[width]
    page.set_viewport_size({"width": w, "height": h})
    log_in(page, "/models/churn/", "dana", PASSWORD)

    # when the version is opened from the model page's versions table
    page.click("#v2 a[href='/models/churn/versions/2/']")
    page.wait_for_url("**/models/churn/versions/2/")

    # then its signature, metrics, libraries, example (as JSON) and sha256 are there
    assert "f0" in page.locator("#version-signature").inner_text()
    assert "0.93" in page.locator("#metrics-reported").inner_text()
    assert "1.9.1" in page.locator("#library-versions").inner_text()
    assert '"f0": 5.1' in page.locator("#input-example").inner_text()
    assert page.locator("#sha256").inner_text() == churn[1].sha256
    assert page.locator("#try-version").is_visible()
    _fits(page, w)


@pytest.mark.parametrize("width", list(WIDTHS), ids=list(WIDTHS))
def test_compare_two_ticked_versions(
    page: Any, dana: Any, churn: list[ModelVersion], width: str
) -> None:
    w, h = WIDTHS[width]
    page.set_viewport_size({"width": w, "height": h})
    log_in(page, "/models/churn/", "dana", PASSWORD)

    # when two versions are ticked and compared
    page.check("#v1 input[name=v]")
    page.check("#v3 input[name=v]")
    page.click("#compare")
    page.wait_for_url("**/models/churn/compare/?v=*")

    # then the best value of each metric is highlighted and a chart is drawn
    best = page.locator("#compare-metrics td.best")
    assert best.count() == 2  # v3 has both the best accuracy and the lowest log loss here
    headers = page.locator("#compare-metrics thead th").all_inner_texts()
    assert sorted(headers[1:]) == ["v1", "v3"]
    chart = page.locator("#metric-chart svg")
    assert chart.is_visible()
    assert chart.locator("circle").count() == 2
    assert chart.bounding_box()["width"] <= w
    _fits(page, w)

    # and another metric is charted from its row's link
    page.click("#compare-metrics a:text('log_loss')")
    assert page.locator("#metric-chart svg").get_attribute("aria-label") == "log_loss by version"
    assert "lower is better" in page.locator("main").inner_text()


@pytest.mark.parametrize("width", list(WIDTHS), ids=list(WIDTHS))
def test_promote_with_confirmation_then_roll_back(
    page: Any, dana: Any, churn: list[ModelVersion], width: str
) -> None:
    w, h = WIDTHS[width]
    page.set_viewport_size({"width": w, "height": h})
    log_in(page, "/models/churn/", "dana", PASSWORD)

    # when production is pointed at v1: a review step first, nothing moved yet
    page.fill("#alias-form input[name=alias]", "production")
    page.select_option("#alias-form select[name=version]", "1")
    page.click("#alias-form button[type=submit]")
    assert "from v3 at v1" in page.locator("#alias-summary").inner_text()
    assert _api_alias(dana, "production") == 3
    _fits(page, w)
    page.click("#confirm")

    # then the API shows it moved, and the model page lists the change and offers a rollback
    page.wait_for_url("**/models/churn/#aliases")
    assert _api_alias(dana, "production") == 1
    assert "v3" in page.locator("#alias-history").inner_text()
    _fits(page, w)

    # when it is rolled back (confirmed too)
    page.click("tr[data-alias=production] a.rollback")
    assert "at v3" in page.locator("#alias-summary").inner_text()
    page.click("#confirm")

    # then production is back on v3
    page.wait_for_url("**/models/churn/#aliases")
    assert _api_alias(dana, "production") == 3
    assert page.locator("#alias-history tbody tr").count() == 2


@pytest.mark.parametrize("width", list(WIDTHS), ids=list(WIDTHS))
def test_try_it_on_a_version_that_is_not_the_default(
    page: Any, dana: Any, churn: list[ModelVersion], width: str
) -> None:
    w, h = WIDTHS[width]
    page.set_viewport_size({"width": w, "height": h})
    log_in(page, "/serving/models/churn/try/", "dana", PASSWORD)
    assert "version 3" in page.locator("h1").inner_text()

    # when v1 is chosen and a row predicted
    page.select_option("#try-target select[name=version]", "1")
    page.click("#try-target button[type=submit]")
    page.wait_for_url("**/serving/models/churn/try/?version=1*")
    page.fill("#id_f0", "6.7")
    page.fill("#id_f1", "3.0")
    page.fill("#id_f2", "5.2")
    page.fill("#id_f3", "2.3")
    page.click("#try-form button[type=submit]")

    # then v1 answered
    assert "version 1" in page.locator("h1").inner_text()
    assert page.locator("#prediction").inner_text() == "virginica"
    _fits(page, w)


def test_try_it_of_a_linked_model_takes_entity_keys(page: Any, dana: Any) -> None:
    # given `risk` (f0, f1, f2) whose f1 and f2 come from a service keyed by customer_id,
    # customer 1 having f1 = 0.5 and f2 = -1.0 online
    stats = group_with_values("stats", "customer_id", [{"customer_id": 1, "f1": 0.5, "f2": -1.0}])
    estimator, example = _fit_all()["reg"]
    version = ModelVersionFactory.create(
        model__name="risk", estimator=estimator, input_example=example
    )
    version.feature_service = FeatureServiceFactory.create(
        name="risk-features", features=list(stats.features.all())
    )
    version.save()
    log_in(page, "/serving/models/risk/try/", "dana", PASSWORD)

    # then the form asks for the key and the request-time column, not the stored features
    labels = page.locator("#try-form label").all_inner_texts()
    assert labels == ["customer_id", "f0"]
    assert page.locator("#linked-note").is_visible()

    # when customer 1 is predicted with f0 = 2
    page.fill("#id_customer_id", "1")
    page.fill("#id_f0", "2")
    page.click("#try-form button[type=submit]")

    # then the features were read from the online store: 1*2 - 2*0.5 + 0.5*(-1) + 3
    assert float(page.locator("#prediction").inner_text()) == pytest.approx(3.5)


@pytest.mark.parametrize("width", list(WIDTHS), ids=list(WIDTHS))
def test_models_list_hides_archived_and_sorts(page: Any, dana: Any, width: str) -> None:
    # given a live model and an archived one
    RegisteredModelFactory.create(name="alpha")
    RegisteredModelFactory.create(name="zeta", tags={"archived": "2025-11"})
    w, h = WIDTHS[width]
    page.set_viewport_size({"width": w, "height": h})
    log_in(page, "/models/", "dana", PASSWORD)

    # then the archived model is hidden until asked for
    assert page.locator("#models tbody a").all_inner_texts()[:1] == ["alpha"]
    assert "zeta" not in page.locator("#models").inner_text()
    page.check("#show-archived")
    page.click("#model-search button[type=submit]")
    page.wait_for_url("**archived=1*")
    assert "zeta" in page.locator("#models").inner_text()

    # and sorting by name descending keeps the filter
    page.click("#sort-name")  # sorted by name already: the header reverses it
    page.wait_for_url("**sort=-name*")
    names = page.locator("#models tbody tr td:first-child a").all_inner_texts()
    assert names == ["zeta", "alpha"]
    assert "archived=1" in page.url
    _fits(page, w)
