"""Browser: create an API token on the profile page, copy it, use it against the live API,
revoke it after the confirmation, and see it refused; at desktop and phone widths."""

from typing import Any

import pytest
import requests

from tests.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}


def _get(live_server: Any, key: str) -> int:
    response = requests.get(
        f"{live_server.url}/api/v1/tokens/", headers={"Authorization": f"Token {key}"}, timeout=30
    )
    return response.status_code


@pytest.mark.parametrize("size", WIDTHS)
def test_create_copy_use_revoke_a_token(page, live_server, django_user_model, size):
    # Given a signed-in user on their profile page, reached from the top bar
    width, height = WIDTHS[size]
    page.set_viewport_size({"width": width, "height": height})
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    log_in(page, "/")
    page.locator("header a", has_text="API tokens").click()
    page.wait_for_url("**/accounts/tokens/")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # When they create a token and copy the new key
    page.fill("#id_name", "laptop")
    page.select_option("#id_expires", "7")
    page.click("#create-token")
    key = page.locator("#new-key").inner_text().strip()
    page.click('button.copy[data-copy="#new-key"]')
    page.wait_for_function("document.querySelector('button.copy').textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    # Then the copied key works against the live API
    assert copied.strip() == key
    assert _get(live_server, copied.strip()) == 200
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # When they revoke it, confirming on the next page
    page.locator("#tokens tr", has_text="laptop").locator("a.revoke").click()
    page.wait_for_url("**/revoke")
    assert "laptop" in page.locator("h1").inner_text()
    page.click("#confirm-revoke")
    page.wait_for_url("**/accounts/tokens/")
    # Then it is gone from the list and refused
    assert page.locator("#tokens tr", has_text="laptop").count() == 0
    assert _get(live_server, key) == 401


def test_a_mistake_on_the_form_is_shown_on_the_page(page, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    log_in(page, "/accounts/profile/")
    page.fill("#id_name", "p")
    page.select_option("#id_scope", "predict")
    page.click("#create-token")
    assert "names the models" in page.locator("#token-form").inner_text()
    assert page.locator("#new-key").count() == 0
