"""The profile page: your teams and your API tokens; create, copy once, revoke after a
confirmation; every mistake is a form error."""

import pytest

from accounts.models import ApiToken
from accounts.services import token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_the_profile_is_the_tokens_page_with_your_teams(signed_in):
    html = signed_in.get("/accounts/profile/").content.decode()
    assert "Your profile" in html
    assert '<span class="badge">data</span>' in html
    assert 'id="token-form"' in html


def test_a_new_key_has_a_copy_button_and_is_shown_once(signed_in, user):
    created = signed_in.post("/accounts/tokens/", {"name": "ci", "expires": "7", "scope": "full"})
    html = created.content.decode()
    key = created.context["key"]
    assert f'<pre id="new-key">{key}</pre>' in html
    assert '<button type="button" class="copy" data-copy="#new-key">' in html
    assert key not in signed_in.get("/accounts/tokens/").content.decode()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "expires": "7", "scope": "full"}, "name", "This field is required."),
        ({"name": "x" * 101, "expires": "7", "scope": "full"}, "name", "at most 100"),
        ({"name": "p", "expires": "7", "scope": "predict"}, "models", "names the models"),
        ({"name": "taken", "expires": "7", "scope": "full"}, "name", "already have a token"),
        ({"name": "e", "expires": "9999", "scope": "full"}, "expires", "not one of"),
        ({"name": "s", "expires": "7", "scope": "root"}, "scope", "not one of"),
    ],
)
def test_mistakes_are_form_errors_not_500s(signed_in, user, data, field, message):
    token_create(user=user, name="taken")
    response = signed_in.post("/accounts/tokens/", data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert response.context["key"] is None


def test_revoking_asks_for_a_confirmation_first(signed_in, user):
    token, _ = token_create(user=user, name="app")
    listed = signed_in.get("/accounts/tokens/").content.decode()
    assert f'href="/accounts/tokens/{token.pk}/revoke"' in listed
    # the link opens a confirmation; nothing is revoked yet
    confirm = signed_in.get(f"/accounts/tokens/{token.pk}/revoke")
    assert confirm.status_code == 200
    assert 'id="confirm-revoke"' in confirm.content.decode()
    assert ApiToken.objects.filter(pk=token.pk).exists()
    # confirming revokes it
    done = signed_in.post(f"/accounts/tokens/{token.pk}/revoke", follow=True)
    assert "revoked" in done.content.decode()
    assert not ApiToken.objects.filter(pk=token.pk).exists()


def test_another_users_token_has_no_confirmation_page(signed_in, django_user_model):
    bob = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    token, _ = token_create(user=bob, name="bob's")
    assert signed_in.get(f"/accounts/tokens/{token.pk}/revoke").status_code == 404
