import pytest

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_admin_login_then_home_page(page, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")
    page.goto("/admin/login/?next=/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-root-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/")
    assert page.locator("header nav").inner_text().split() == [
        "Models",
        "Features",
        "Jobs",
        "API",
        "docs",
        "Admin",
    ]
    assert page.locator("h1").inner_text() == "mlplatform"
