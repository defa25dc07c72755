"""The "Try it" form of a model, in a real browser."""

import pytest

from serving import selectors
from tests.conftest import log_in
from tests.factories import ModelVersionFactory
from tests.serving.conftest import _fit_all

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_resolution():
    # Another test may have served a model of the same name moments ago from another database
    # state; the per-process resolution cache must not carry it over.
    selectors.resolution_cache_clear()


def test_try_it_form_returns_a_prediction(page, django_user_model):
    django_user_model.objects.create_user("bob", password="pw-bob-12345", is_staff=True)
    estimator, example = _fit_all()["iris"]
    ModelVersionFactory.create(model__name="iris", estimator=estimator, input_example=example)
    log_in(page, "/serving/models/iris/try/", "bob", "pw-bob-12345")

    # Prefilled from the input example; change one value and predict.
    assert page.input_value("#id_f0") == "5.1"
    page.fill("#id_f2", "5.2")
    page.fill("#id_f3", "2.3")
    page.fill("#id_f0", "6.7")
    page.fill("#id_f1", "3.0")
    page.click("#try-form button[type=submit]")

    assert page.locator("#prediction").inner_text() == "virginica"
    assert page.locator("#try-result table tr").count() == 4  # header + 3 classes
    assert "/mlflow/models/iris/invocations" in page.locator("pre").nth(1).inner_text()


def test_try_it_shows_a_form_error_for_a_bad_value(page, django_user_model):
    django_user_model.objects.create_user("bob", password="pw-bob-12345", is_staff=True)
    estimator, example = _fit_all()["iris"]
    ModelVersionFactory.create(model__name="iris", estimator=estimator, input_example=example)
    log_in(page, "/serving/models/iris/try/", "bob", "pw-bob-12345")

    page.evaluate("document.querySelector('#id_f1').type = 'text'")
    page.fill("#id_f1", "abc")
    page.click("#try-form button[type=submit]")

    assert "Enter a number" in page.locator("#try-form").inner_text()
    assert page.locator("#try-result").count() == 0
