"""Native protocol: /api/v1/models/{name}[/versions/{n}|/aliases/{a}]/predict."""

import pytest

from tests.serving.conftest import alias_set

pytestmark = pytest.mark.django_db

ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}


def url(name: str, suffix: str = "") -> str:
    return f"/api/v1/models/{name}{suffix}/predict"


def test_predict_records_names_the_version(api_client, iris):
    response = api_client.post(url("iris"), {"instances": [ROW, ROW]}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {"model": "iris", "version": 1, "predictions": ["setosa", "setosa"]}
    assert response["X-Request-ID"]


def test_predict_columns_in_any_order_with_probabilities(api_client, iris):
    columns = {"f3": [0.2], "f1": [3.5], "f0": [5.1], "f2": [1.4]}

    response = api_client.post(
        url("iris"), {"inputs": columns, "return": ["predict", "predict_proba"]}, format="json"
    )

    body = response.json()
    assert response.status_code == 200, body
    assert body["predictions"] == ["setosa"]
    assert body["classes"] == ["setosa", "versicolor", "virginica"]
    assert len(body["probabilities"][0]) == 3
    assert body["probabilities"][0][0] == pytest.approx(max(body["probabilities"][0]))


def test_default_target_is_production_alias_else_highest_ready(api_client, make_version):
    first = make_version("iris", name="flowers", number=1)
    make_version("reg", name="flowers", number=2)  # a different model under the same name
    highest = api_client.post(url("flowers"), {"instances": [ROW]}, format="json")
    assert highest.status_code == 400  # v2 takes f0..f2 only: f3 is unknown
    assert "f3" in highest.json()["detail"]

    alias_set(first)

    response = api_client.post(url("flowers"), {"instances": [ROW]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 1


def test_explicit_version_and_alias_routes(api_client, make_version):
    v1 = make_version("iris", name="flowers", number=1)
    make_version("iris", name="flowers", number=2)
    alias_set(v1, "staging")

    by_version = api_client.post(url("flowers", "/versions/2"), {"instances": [ROW]}, format="json")
    by_alias = api_client.post(
        url("flowers", "/aliases/staging"), {"instances": [ROW]}, format="json"
    )

    assert by_version.json()["version"] == 2
    assert by_alias.json()["version"] == 1


@pytest.mark.parametrize(
    ("suffix", "needle"),
    [("", "not found"), ("/versions/9", "no version 9"), ("/aliases/gold", "no alias 'gold'")],
)
def test_unknown_targets_are_404(api_client, iris, suffix, needle):
    name = "nope" if not suffix else "iris"

    response = api_client.post(url(name, suffix), {"instances": [ROW]}, format="json")

    assert response.status_code == 404
    assert needle in response.json()["detail"]


def test_without_token_is_401(anon_client, iris):
    response = anon_client.post(url("iris"), {"instances": [ROW]}, format="json")

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({"instances": [{"f0": 1, "f1": 2, "f2": 3}]}, "f3", "Missing column 'f3'"),
        ({"instances": [{**ROW, "zzz": 1}]}, "zzz", "Unknown column 'zzz'"),
        ({"instances": [{"nope": 1}]}, "nope", "Unknown column 'nope'"),
        ({"instances": [{**ROW, "f1": "3.5"}]}, "f1", "numeric strings are not accepted"),
        ({"instances": [{**ROW, "f1": "abc"}]}, "f1", "'abc'"),
        ({"instances": [{**ROW, "f1": True}]}, "f1", "boolean"),
        ({"instances": [{**ROW, "f1": None}]}, "f1", "null"),
        ({"instances": [{**ROW, "f1": [1]}]}, "f1", "array"),
        ({"instances": []}, "instances", "empty"),
        ({"instances": [ROW, {"f0": 1}]}, "f1", "row 1"),
        ({"inputs": {"f0": [1, 2], "f1": [1], "f2": [1], "f3": [1]}}, "f1", "same length"),
        ({"instances": [ROW], "inputs": {}}, "instances", "exactly one"),
        ({}, "instances", "exactly one"),
        ({"rows": []}, "rows", "Unknown field 'rows'"),
        ({"instances": [ROW], "return": ["explain"]}, "return", "'explain'"),
        ({"instances": "x"}, "instances", "array of objects"),
    ],
)
def test_bad_input_is_400_naming_the_field(api_client, iris, body, field, needle):
    response = api_client.post(url("iris"), body, format="json")

    assert response.status_code == 400, response.content
    assert needle in response.json()["detail"]
    assert response.json()["field"] == field


def test_nan_infinity_literals_and_bad_json_are_400(api_client, iris):
    overflow = '{"instances": [{"f0": 1e400, "f1": 1, "f2": 1, "f3": 1}]}'
    for raw in ('{"instances": [{"f0": NaN}]}', '{"instances": [{"f0": -Infinity}]}', overflow):
        response = api_client.post(url("iris"), raw, content_type="application/json")
        assert response.status_code == 400, raw
        assert "NaN and Infinity" in response.json()["detail"]
    assert api_client.post(url("iris"), "{nope", content_type="application/json").status_code == 400


def test_row_limit_is_400(api_client, iris, settings):
    settings.MLPLATFORM_MAX_BATCH_ROWS = 3

    response = api_client.post(url("iris"), {"instances": [ROW] * 4}, format="json")

    assert response.status_code == 400
    assert "limit of 3 rows" in response.json()["detail"]


def test_body_over_size_cap_is_413_json(api_client, iris, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = api_client.post(url("iris"), {"instances": [ROW] * 50}, format="json")

    assert response.status_code == 413
    assert "exceeds 1000 bytes" in response.json()["detail"]


def test_model_nan_output_is_null(api_client, make_version):
    make_version("broken")

    response = api_client.post(
        url("broken"), {"instances": [{"f0": 1, "f1": 2, "f2": 3}]}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["predictions"] == [None]


def test_predict_proba_of_model_without_it_is_400(api_client, make_version):
    make_version("reg")

    response = api_client.post(
        url("reg"),
        {"instances": [{"f0": 1, "f1": 2, "f2": 3}], "return": ["predict_proba"]},
        format="json",
    )

    assert response.status_code == 400
    assert "no predict_proba" in response.json()["detail"]


@pytest.mark.parametrize(("key", "expected"), [("reg", float), ("km", int), ("iso", int)])
def test_regressor_clusterer_outlier_detector(api_client, make_version, key, expected):
    make_version(key)

    response = api_client.post(
        url(key), {"instances": [{"f0": 0.1, "f1": 0.2, "f2": 0.3}]}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert isinstance(response.json()["predictions"][0], expected)


def test_dataframe_pipeline_gets_named_string_columns(api_client, make_version):
    make_version("colors")

    ok = api_client.post(
        url("colors"),
        {"instances": [{"color": "blue", "x": 2.0}], "return": ["predict_proba"]},
        format="json",
    )
    unseen = api_client.post(
        url("colors"), {"instances": [{"color": "mauve", "x": 2.0}]}, format="json"
    )
    wrong = api_client.post(url("colors"), {"instances": [{"color": 3, "x": 2.0}]}, format="json")

    assert ok.status_code == 200, ok.json()
    assert ok.json()["classes"] == [0, 1]
    assert unseen.status_code == 400
    assert "rejected the input" in unseen.json()["detail"]
    assert wrong.status_code == 400
    assert wrong.json()["field"] == "color"


def test_revoked_token_is_refused_after_the_cache_bound(api_client, iris, settings):
    from accounts.models import ApiToken
    from mlplatform.api import token_cache_clear

    assert api_client.post(url("iris"), {"instances": [ROW]}, format="json").status_code == 200
    ApiToken.objects.all().delete()
    cached = api_client.post(url("iris"), {"instances": [ROW]}, format="json")
    settings.MLPLATFORM_TOKEN_CACHE_SECONDS = 0.0
    token_cache_clear()

    refused = api_client.post(url("iris"), {"instances": [ROW]}, format="json")

    assert cached.status_code == 200  # still inside the bound
    assert refused.status_code == 401


def test_a_token_over_the_throttle_rate_gets_429(api_client, iris, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import UserRateThrottle

    cache.clear()  # counts from earlier tests (or runs, on a shared Redis) do not belong here
    monkeypatch.setitem(UserRateThrottle.THROTTLE_RATES, "user", "3/min")

    codes = [
        api_client.post(url("iris"), {"instances": [ROW]}, format="json").status_code
        for _ in range(4)
    ]
    refused = api_client.post(url("iris"), {"instances": [ROW]}, format="json")

    assert codes == [200, 200, 200, 429]
    assert "throttled" in refused.json()["detail"].lower()
    assert int(refused["Retry-After"]) > 0
