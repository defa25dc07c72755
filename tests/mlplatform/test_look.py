"""The shared layout: favicon, stylesheet and script from the server itself, and the humanize
filters the pages use."""

import pytest
from django.conf import settings
from django.test import Client


def test_favicon_ico_redirects_to_the_sites_icon(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith("/mlplatform/favicon.svg")


@pytest.mark.django_db
def test_the_layout_links_icon_stylesheet_and_script_from_the_server(
    client: Client, django_user_model
) -> None:
    client.force_login(django_user_model.objects.create_user("alice", password="pw-alice-123"))
    html = client.get("/").content.decode()
    assert 'rel="icon" type="image/svg+xml" href="/static/mlplatform/favicon.svg"' in html
    assert 'href="/static/mlplatform/site.css"' in html
    assert 'src="/static/mlplatform/site.js" defer' in html
    assert "http://" not in html.replace("http://testserver", "")
    assert "https://" not in html


def test_humanize_is_installed() -> None:
    assert "django.contrib.humanize" in settings.INSTALLED_APPS
