"""The serving routes' short path through the middleware stack (serving/middleware.py)."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}
PREDICT = "/api/v1/models/iris/predict"


def test_prediction_keeps_security_headers_and_sets_no_cookie(api_client, iris):
    response = api_client.post(PREDICT, {"instances": [ROW]}, format="json")

    assert response.status_code == 200, response.content
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "Set-Cookie" not in response
    assert "Cookie" not in response.get("Vary", "")


def test_host_outside_allowed_hosts_is_refused(api_client, iris):
    response = api_client.post(
        PREDICT, {"instances": [ROW]}, format="json", HTTP_HOST="attacker.example"
    )

    assert response.status_code == 400


def test_a_browser_session_is_not_a_token(user, iris):
    client = APIClient()
    client.force_login(user)

    response = client.post(PREDICT, {"instances": [ROW]}, format="json")

    assert response.status_code == 401
    assert "credentials" in response.json()["detail"].lower()


def test_registry_routes_under_the_same_prefix_take_the_full_stack(api_client, iris):
    listing = api_client.get("/api/v1/models/")
    detail = api_client.get("/api/v1/models/iris/")

    assert listing.status_code == 200
    assert detail.status_code == 200
    assert detail.json()["name"] == "iris"
    assert detail["X-Frame-Options"] == "DENY"  # set by a layer the prediction routes skip


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/v2/nope/deeper"), ("post", "/mlflow/models/iris/nope"), ("get", "/v2models")],
)
def test_other_paths_under_the_prefixes_fall_through_to_404(api_client, method, path):
    response = getattr(api_client, method)(path)

    assert response.status_code == 404
