"""API tokens: hashed at rest, named, expiring, revocable, optionally scoped to predictions on
chosen models; the Tokens page and API; sign-in for every user."""

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient
from sklearn.linear_model import LogisticRegression

from accounts.models import ApiToken
from accounts.services import token_create
from mlplatform.api import token_cache_clear
from tests.conftest import api_key_for

pytestmark = pytest.mark.django_db

ROW = {"f0": 0.2, "f1": 0.9}


@pytest.fixture(autouse=True)
def _fresh_token_cache(settings: Any) -> None:
    """No token checked by an earlier test is trusted here; revocation takes effect at once."""
    settings.MLPLATFORM_TOKEN_CACHE_SECONDS = 0.0
    settings.MLPLATFORM_ALIAS_TTL_SECONDS = 0
    settings.MLPLATFORM_LOG_BACKGROUND = False
    token_cache_clear()


@pytest.fixture
def models(db: Any) -> list[str]:
    """Two ready models, `allowed` and `other`."""
    from serving import selectors
    from tests.factories import ModelVersionFactory

    selectors.resolution_cache_clear()
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    estimator = LogisticRegression().fit(x, [0, 1, 0, 1])
    for name in ("allowed", "other"):
        ModelVersionFactory.create(
            model__name=name, model__owner=None, estimator=estimator, input_example=[ROW]
        )
    return ["allowed", "other"]


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def predict(client: APIClient, model: str) -> Any:
    return client.post(f"/api/v1/models/{model}/predict", {"instances": [ROW]}, format="json")


# --- storage ----------------------------------------------------------------------------------


def test_the_key_is_not_stored_anywhere_in_the_token_row(user):
    token, key = token_create(user=user, name="laptop")

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken WHERE id = %s", [token.pk])
        row = cursor.fetchone()

    stored = " ".join(str(value) for value in row)
    assert key.startswith("mlp_")
    assert key not in stored
    assert key[4:] not in stored  # nor its random part
    assert token.prefix == key[: len(token.prefix)]  # only a short prefix is kept


def test_a_user_has_several_named_tokens_each_working(user):
    keys = [api_key_for(user, name=name) for name in ("laptop", "ci", "scoring service")]

    assert sorted(ApiToken.objects.filter(user=user).values_list("name", flat=True)) == [
        "ci",
        "laptop",
        "scoring service",
    ]
    for key in keys:
        assert client_with(key).get("/api/v1/jobs/").status_code == 200


def test_a_name_is_unique_per_user(user, api_client):
    api_client.post("/api/v1/tokens/", {"name": "ci"}, format="json")

    again = api_client.post("/api/v1/tokens/", {"name": "ci"}, format="json")

    assert again.status_code == 400
    assert again.json()["field"] == "name"


# --- expiry and revocation --------------------------------------------------------------------


def test_tokens_expire_by_default_after_the_operators_ttl(user, settings):
    settings.MLPLATFORM_TOKEN_TTL_DAYS = 30

    token, _ = token_create(user=user, name="default")

    assert timedelta(days=29) < token.expiry - timezone.now() <= timedelta(days=30)


def test_no_expiry_only_when_the_operator_allows_it(user, settings, api_client):
    settings.MLPLATFORM_TOKEN_TTL_DAYS = 90
    refused = api_client.post("/api/v1/tokens/", {"name": "f", "no_expiry": True}, format="json")
    too_long = api_client.post(
        "/api/v1/tokens/", {"name": "f", "expires_in_days": 91}, format="json"
    )
    settings.MLPLATFORM_TOKEN_TTL_DAYS = None  # MLPLATFORM_TOKEN_TTL_DAYS=never
    allowed = api_client.post("/api/v1/tokens/", {"name": "f", "no_expiry": True}, format="json")

    settings.MLPLATFORM_TOKEN_TTL_DAYS = None
    absurd = [
        api_client.post("/api/v1/tokens/", {"name": "f", "expires_in_days": days}, format="json")
        for days in (1e308, 0, -1)
    ]

    assert refused.status_code == too_long.status_code == 400
    assert [r.status_code for r in absurd] == [400, 400, 400]
    assert "MLPLATFORM_TOKEN_TTL_DAYS" in refused.json()["detail"]
    assert allowed.status_code == 201, allowed.json()
    assert allowed.json()["expires"] is None


@pytest.mark.parametrize("route", ["registry", "predict"])
def test_an_expired_token_is_a_401_with_a_json_body(user, models, route):
    token, key = token_create(user=user, name="old", expires_in_days=1)
    client = client_with(key)

    def call() -> Any:
        return client.get("/api/v1/models/") if route == "registry" else predict(client, "allowed")

    assert call().status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))

    response = call()

    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_an_expired_token_is_refused_even_from_the_hot_path_cache(user, models, settings):
    settings.MLPLATFORM_TOKEN_CACHE_SECONDS = 60.0
    token, key = token_create(user=user, name="old", expires_in_days=1)
    client = client_with(key)
    assert predict(client, "allowed").status_code == 200  # now cached for a minute
    ApiToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    token_cache_clear()
    assert predict(client, "allowed").status_code == 401  # looked up again: expired

    # and a token that expires while cached is refused without a lookup
    token, key = token_create(user=user, name="short", expires_in_days=1)
    client = client_with(key)
    assert predict(client, "allowed").status_code == 200
    from mlplatform.api import CachedTokenAuthentication

    assert key not in CachedTokenAuthentication._cache  # keyed by digest, not by key
    _, grant = CachedTokenAuthentication._cache[token.digest]
    object.__setattr__(grant, "expires_at", 0.0)

    assert predict(client, "allowed").status_code == 401


def test_a_revoked_token_is_a_401_on_the_hot_path_and_elsewhere(user, models, api_client):
    created = api_client.post("/api/v1/tokens/", {"name": "app"}, format="json").json()
    client = client_with(created["key"])
    assert predict(client, "allowed").status_code == 200
    assert client.get("/api/v1/jobs/").status_code == 200

    assert api_client.delete(f"/api/v1/tokens/{created['id']}/").status_code == 204

    assert predict(client, "allowed").status_code == 401
    assert client.get("/api/v1/jobs/").status_code == 401
    assert "detail" in client.get("/api/v1/jobs/").json()


def test_another_users_token_cannot_be_seen_or_revoked(user, api_client, django_user_model):
    bob = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    token, key = token_create(user=bob, name="bob's")

    assert api_client.get(f"/api/v1/tokens/{token.pk}/").status_code == 404
    assert api_client.delete(f"/api/v1/tokens/{token.pk}/").status_code == 404
    assert token.pk not in [t["id"] for t in api_client.get("/api/v1/tokens/").json()["results"]]
    assert ApiToken.objects.filter(pk=token.pk).exists()
    assert client_with(key).get("/api/v1/jobs/").status_code == 200


def test_the_api_lists_tokens_without_keys(user, api_client):
    created = api_client.post(
        "/api/v1/tokens/", {"name": "ci", "expires_in_days": 7}, format="json"
    ).json()

    listed = api_client.get("/api/v1/tokens/").json()["results"]

    assert created["key"].startswith(created["prefix"])
    mine = next(t for t in listed if t["id"] == created["id"])
    assert mine["name"] == "ci"
    assert mine["scope"] == "full"
    assert "key" not in mine
    assert created["key"] not in str(listed)


# --- scopes -----------------------------------------------------------------------------------


def test_a_predict_scoped_token_predicts_only_with_its_models(user, models, api_client):
    created = api_client.post(
        "/api/v1/tokens/",
        {"name": "scorer", "scope": "predict", "models": ["allowed"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    scoped = client_with(created.json()["key"])

    allowed = {
        "native": predict(scoped, "allowed"),
        "mlflow": scoped.post(
            "/mlflow/models/allowed/invocations", {"instances": [ROW]}, format="json"
        ),
        "mlflow ping": scoped.get("/mlflow/models/allowed/ping"),
        "mlflow version": scoped.get("/mlflow/models/allowed/version"),
        "v2 ready": scoped.get("/v2/models/allowed/ready"),
    }
    refused = {
        "other model": predict(scoped, "other"),
        "other model, mlflow": scoped.post(
            "/mlflow/models/other/invocations", {"instances": [ROW]}, format="json"
        ),
        "other model, v2": scoped.get("/v2/models/other"),
        "other model, mlflow version": scoped.get("/mlflow/models/other/version"),
        "registry": scoped.get("/api/v1/models/"),
        "registry, its own model": scoped.get("/api/v1/models/allowed/"),
        "features": scoped.get("/api/v1/features/entities/"),
        "online features": scoped.post("/api/v1/features/online/", {}, format="json"),
        "jobs": scoped.get("/api/v1/jobs/"),
        "tokens": scoped.get("/api/v1/tokens/"),
        "new token": scoped.post("/api/v1/tokens/", {"name": "escalate"}, format="json"),
    }

    assert {name: r.status_code for name, r in allowed.items()} == dict.fromkeys(allowed, 200)
    assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 403)
    assert all(b"may only predict with the models allowed" in r.content for r in refused.values())


def test_metrics_refuse_a_scoped_token_and_take_staff_and_scrape_tokens(
    user, models, settings, anon_client
):
    settings.MLPLATFORM_METRICS_TOKEN = "scrape-secret"
    user.is_staff = True
    user.save()
    staff = client_with(api_key_for(user))
    scoped = client_with(api_key_for(user, scope="predict", predict_models=["allowed"]))
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer scrape-secret")

    assert staff.get("/metrics").status_code == 200
    assert anon_client.get("/metrics").status_code == 200
    assert scoped.get("/metrics").status_code == 401
    assert APIClient().get("/metrics").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "s", "scope": "predict"}, "models"),
        ({"name": "s", "scope": "predict", "models": ["ghost"]}, "models"),
        ({"name": "s", "models": ["allowed"]}, "models"),
        ({"name": " "}, "name"),
    ],
)
def test_bad_token_requests_are_400_naming_the_field(api_client, models, body, field):
    response = api_client.post("/api/v1/tokens/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["detail"]


# --- pages ------------------------------------------------------------------------------------


def test_a_non_staff_user_signs_in_and_reaches_the_pages(client, user):
    assert not user.is_staff
    assert client.get("/models/").url.startswith("/accounts/login/")

    signed_in = client.post(
        "/accounts/login/?next=/models/",
        {"username": "alice", "password": "pw-alice-123", "next": "/models/"},
    )

    assert signed_in.status_code == 302
    assert signed_in.url == "/models/"
    assert client.get("/models/").status_code == 200
    home = client.get("/")
    assert b"/accounts/tokens/" in home.content  # linked from the header
    assert b"/accounts/logout/" in home.content
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/models/").status_code == 302


def test_the_tokens_page_creates_shows_once_lists_and_revokes(client, user, models):
    client.force_login(user)

    created = client.post(
        "/accounts/tokens/",
        {"name": "scorer", "expires": "30", "scope": "predict", "models": ["allowed"]},
    )
    token = ApiToken.objects.get(user=user, name="scorer")
    key = created.context["key"]
    listed = client.get("/accounts/tokens/")

    assert created.status_code == 200
    assert key.encode() in created.content
    assert created["Cache-Control"] == "no-store"
    assert token.scope == "predict"
    assert [m.name for m in token.predict_models.all()] == ["allowed"]
    assert timedelta(days=29) < token.expiry - timezone.now() <= timedelta(days=30)
    assert b"scorer" in listed.content
    assert token.prefix.encode() in listed.content
    assert key.encode() not in listed.content  # shown once
    assert predict(client_with(key), "allowed").status_code == 200

    revoked = client.post(f"/accounts/tokens/{token.pk}/revoke")

    assert revoked.status_code == 302
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert predict(client_with(key), "allowed").status_code == 401


def test_the_tokens_page_cannot_revoke_another_users_token(client, user, django_user_model):
    bob = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    token, _ = token_create(user=bob, name="bob's")
    client.force_login(user)

    assert client.post(f"/accounts/tokens/{token.pk}/revoke").status_code == 404
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_the_admin_shows_no_key_or_digest(admin_client, user):
    token, key = token_create(user=user, name="laptop")

    pages = [
        admin_client.get("/admin/accounts/apitoken/"),
        admin_client.get(f"/admin/accounts/apitoken/{token.pk}/change/"),
    ]

    for page in pages:
        assert page.status_code == 200
        assert key.encode() not in page.content
        assert key[4:].encode() not in page.content
        assert token.digest.encode() not in page.content
    assert b"laptop" in pages[0].content
    assert token.prefix.encode() in pages[0].content
    assert admin_client.get("/admin/authtoken/").status_code == 404
    assert admin_client.get("/admin/knox/").status_code == 404


# --- migration of plaintext tokens ------------------------------------------------------------


def test_plaintext_tokens_are_moved_to_hashed_ones_that_still_work(user, models):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("accounts.migrations.0002_hash_plaintext_tokens")
    legacy_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer, "
            "created timestamp with time zone)"
            if connection.vendor == "postgresql"
            else "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer, "
            "created datetime)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)",
            [legacy_key, user.pk, timezone.now()],
        )
    try:
        # the migration's function, on this database (it needs only the editor's connection)
        migration.hash_legacy_tokens(apps, SimpleNamespace(connection=connection))
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM authtoken_token")
            left = cursor.fetchone()[0]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE authtoken_token")

    token = ApiToken.objects.get(user=user)
    assert left == 0  # no plaintext key stays behind
    assert token.expiry is None
    assert legacy_key not in token.digest
    assert predict(client_with(legacy_key), "allowed").status_code == 200
