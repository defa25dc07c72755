"""Canary traffic on an alias, through the prediction protocols: the share of requests the canary
answers, stickiness by routing key, and the version every answer names."""

import json
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from rest_framework.test import APIClient
from sklearn.linear_model import LinearRegression, LogisticRegression

from registry.models import ModelVersion
from serving import traffic
from serving.models import PredictionLog
from tests.conftest import client_for, team_member
from tests.factories import DEFAULT_TEAM, ModelVersionFactory, TeamFactory

REG_ROW = {"f0": 0.1, "f1": -0.2, "f2": 0.3}


@pytest.fixture(autouse=True)
def _fresh_windows() -> None:
    """Each test judges its canaries afresh, and routes afresh (both are per process)."""
    traffic.windows_clear()
    traffic.cache_clear()


def writer(user: Any) -> APIClient:
    """A client of `user` (team `data`) holding the registry's permissions: moves aliases."""
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="registry"))
    return client_for(user)


def versions_of(make_version: Callable[..., ModelVersion], key: str, count: int) -> list:
    return [make_version(key, name="m", number=n) for n in range(1, count + 1)]


def policy_put(client: APIClient, body: dict[str, Any], alias: str = "production") -> None:
    response = client.put(f"/api/v1/models/m/aliases/{alias}/", body, format="json")
    assert response.status_code == 200, response.json()


def predict(client: APIClient, row: dict[str, Any], path: str = "", **headers: str) -> Any:
    return client.post(
        f"/api/v1/models/m{path}/predict", {"instances": [row]}, format="json", headers=headers
    )


def reg4() -> LinearRegression:
    """A regressor that needs a fourth column the requests of these tests lack."""
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(40, 4))
    return LinearRegression().fit(rows, rows.sum(axis=1))


def test_the_canary_answers_its_share_of_requests(
    make_version: Callable[..., ModelVersion], user: Any, settings: Any
) -> None:
    # Given production on v1 with v2 as a 20 % canary (routes cached, as servers run)
    versions_of(make_version, "reg", 2)
    client = writer(user)
    policy_put(client, {"version": 1, "canary": {"version": 2, "percent": 20}})
    settings.MLPLATFORM_ALIAS_TTL_SECONDS = 60
    n, share = 1200, 0.2
    sigma = math.sqrt(n * share * (1 - share))

    # When many requests come without a routing key, and as many with distinct keys
    drawn = Counter(predict(client, REG_ROW)["X-Model-Version"] for _ in range(n))
    keyed = Counter(
        predict(client, REG_ROW, x_routing_key=f"customer-{i}")["X-Model-Version"] for i in range(n)
    )

    # Then the canary answered about 20 % of each, within four standard deviations
    for counts in (drawn, keyed):
        assert set(counts) == {"1", "2"}
        assert abs(counts["2"] - n * share) <= 4 * sigma, counts


def test_a_routing_key_keeps_a_caller_on_one_side(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given a 50 % canary on production
    versions_of(make_version, "reg", 2)
    client = writer(user)
    policy_put(client, {"version": 1, "canary": {"version": 2, "percent": 50}})

    # When each of 40 callers sends several requests with its X-Routing-Key (other values vary)
    sides: dict[str, set[str]] = {}
    for caller in range(40):
        for i in range(4):
            row = {**REG_ROW, "f1": float(i)}
            answer = predict(client, row, x_routing_key=f"caller-{caller}")
            assert answer.status_code == 200
            sides.setdefault(f"caller-{caller}", set()).add(answer["X-Model-Version"])

    # Then every caller stayed on one version, and both versions had callers
    assert all(len(seen) == 1 for seen in sides.values())
    assert {v for seen in sides.values() for v in seen} == {"1", "2"}
    # And the side is the hash's, the same in every process
    for key, seen in sides.items():
        expected = "2" if traffic.key_share("m", key) < 50 else "1"
        assert seen == {expected}


def test_the_policys_routing_field_keeps_a_caller_on_one_side(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given a 50 % canary routed by the request's f0 (an entity key, say)
    versions_of(make_version, "reg", 2)
    client = writer(user)
    policy_put(
        client,
        {"version": 1, "canary": {"version": 2, "percent": 50, "routing_field": "f0"}},
    )

    # When callers identified by f0 send several requests each, in records and in columns
    sides: dict[int, set[str]] = {}
    for caller in range(40):
        for i in range(3):
            row = {"f0": float(caller), "f1": float(i), "f2": 0.5}
            answer = predict(client, row)
            columns = client.post(
                "/api/v1/models/m/predict",
                {"inputs": {k: [v] for k, v in row.items()}},
                format="json",
            )
            sides.setdefault(caller, set()).update(
                {answer["X-Model-Version"], columns["X-Model-Version"]}
            )

    # Then each caller stayed on one side (the key's hash), and both sides had callers
    assert all(len(seen) == 1 for seen in sides.values())
    assert {v for seen in sides.values() for v in seen} == {"1", "2"}
    for caller, seen in sides.items():
        assert seen == {"2" if traffic.key_share("m", str(caller)) < 50 else "1"}
    # And an X-Routing-Key header takes precedence over the field
    header_side = "2" if traffic.key_share("m", "vip") < 50 else "1"
    answers = {
        predict(client, {"f0": float(c), "f1": 0.0, "f2": 0.0}, x_routing_key="vip")[
            "X-Model-Version"
        ]
        for c in range(10)
    }
    assert answers == {header_side}


def test_every_protocol_names_the_version_that_answered(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given production on v1 sending every request to the canary v2 (an iris classifier each)
    versions_of(make_version, "iris", 2)
    client = writer(user)
    policy_put(client, {"version": 1, "canary": {"version": 2, "percent": 100}})
    row = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}
    v2_body = {
        "id": "q1",
        "inputs": [
            {"name": name, "shape": [1], "datatype": "FP64", "data": [value]}
            for name, value in row.items()
        ],
    }

    # When each protocol predicts on the model's default route
    native = client.post("/api/v1/models/m/predict", {"instances": [row]}, format="json")
    on_alias = client.post(
        "/api/v1/models/m/aliases/production/predict", {"instances": [row]}, format="json"
    )
    mlflow = client.post(
        "/mlflow/models/m/invocations", {"dataframe_records": [row]}, format="json"
    )
    v2 = client.post("/v2/models/m/infer", v2_body, format="json")
    v1 = client.post("/v1/models/m:predict", {"instances": [row]}, format="json")
    header = json.dumps(
        {
            "id": "q2",
            "inputs": [
                {"name": n, "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 8}}
                for n in row
            ],
        }
    )
    binary = client.post(
        "/v2/models/m/infer",
        header.encode() + b"".join(np.array([v]).astype("<f8").tobytes() for v in row.values()),
        content_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    # and a request names version 1 (no policy on a version's own route)
    named = client.post("/api/v1/models/m/versions/1/predict", {"instances": [row]}, format="json")

    # Then each answer names v2, in the header and where the body has room
    for answer in (native, on_alias, mlflow, v2, v1, binary):
        assert answer.status_code == 200, answer.content
        assert answer["X-Model-Version"] == "2"
    assert native.json()["version"] == 2
    assert on_alias.json()["version"] == 2
    assert v2.json()["model_version"] == "2"
    assert mlflow.json()["predictions"] == ["setosa"]
    assert v1.json()["predictions"] == ["setosa"]
    assert (named["X-Model-Version"], named.json()["version"]) == ("1", 1)


def test_a_canary_on_another_alias_leaves_the_default_route_alone(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given production on v1 without a policy, and `staging` on v1 with v2 as a 100 % canary
    versions_of(make_version, "reg", 2)
    client = writer(user)
    policy_put(client, {"version": 1})
    policy_put(client, {"version": 1, "canary": {"version": 2, "percent": 100}}, alias="staging")

    # When requests go to the default route and to staging's
    default = predict(client, REG_ROW)
    staging = predict(client, REG_ROW, path="/aliases/staging")

    # Then only staging's requests meet the canary
    assert (default["X-Model-Version"], staging["X-Model-Version"]) == ("1", "2")


def test_the_rollback_api_returns_the_alias_to_its_previous_version(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given production moved from v1 to v2, with a canary v3
    versions_of(make_version, "reg", 3)
    client = writer(user)
    policy_put(client, {"version": 1})
    policy_put(client, {"version": 2, "canary": {"version": 3, "percent": 50}})

    # When the alias is rolled back
    response = client.post("/api/v1/models/m/aliases/production/rollback")

    # Then it is on v1 again, without a canary, and every request is v1's
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 1
    answered = {
        predict(client, REG_ROW, x_routing_key=f"k{i}")["X-Model-Version"] for i in range(20)
    }
    assert answered == {"1"}


def test_an_unknown_policy_version_is_refused_and_changes_nothing(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given production on v1
    versions_of(make_version, "reg", 1)
    client = writer(user)
    policy_put(client, {"version": 1})
    # When a canary that does not exist is asked for
    response = client.put(
        "/api/v1/models/m/aliases/production/",
        {"version": 1, "canary": {"version": 9, "percent": 10}},
        format="json",
    )
    # Then it is a 404 naming the field, and requests still go to v1
    assert response.status_code == 404
    assert response.json()["field"] == "canary.version"
    assert predict(client, REG_ROW)["X-Model-Version"] == "1"


def other_classifier() -> LogisticRegression:
    """An iris-shaped classifier that disagrees with the fitted one on some rows."""
    rng = np.random.default_rng(3)
    x = rng.normal(5, 2, size=(60, 4))
    y = np.array(["setosa", "versicolor", "virginica"])[rng.integers(0, 3, size=60)]
    return LogisticRegression(max_iter=200).fit(x, y)


def add_version(estimator: Any, example: list[dict[str, Any]]) -> ModelVersion:
    """Another version of model `m`."""
    model = ModelVersion.objects.filter(model__name="m").first()
    assert model is not None
    version: ModelVersion = ModelVersionFactory.create(
        model=model.model, estimator=estimator, input_example=example
    )
    return version


# --- the traffic page --------------------------------------------------------------------------


def page_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_traffic_page_shows_each_alias_its_figures_and_charts(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given production on v1 with a 50 % canary v2, and requests answered (shadows' figures
    # are tested in test_shadows.py)
    versions_of(make_version, "reg", 2)
    api = writer(user)
    policy_put(
        api,
        {
            "version": 1,
            "canary": {"version": 2, "percent": 50, "routing_field": "f0"},
            "bounds": {"max_error_rate": 0.5},
        },
    )
    sides = Counter(
        predict(api, REG_ROW, x_routing_key=f"k{i}")["X-Model-Version"] for i in range(30)
    )

    # When its team opens the traffic page
    response = page_client(user).get("/serving/models/m/traffic/")

    # Then it shows the policy, the requests each version answered, and real charts
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="canary">v2</strong> answers 50 %' in html
    assert "No shadows." in html
    assert "routed by <code>f0</code>" in html
    (entry,) = response.context["entries"]
    answering = {(f.version, f.role): f.requests for f in entry["traffic"].answering}
    assert answering == {(1, "primary"): sides["1"], (2, "canary"): sides["2"]}
    assert html.count("<svg") == 2
    assert "Mean latency per minute" in html


def test_the_policy_form_changes_the_traffic_and_refuses_bad_input(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given production on v1, and its team on the traffic page
    versions_of(make_version, "reg", 3)
    api = writer(user)
    policy_put(api, {"version": 1})
    web = page_client(user)
    form = {
        "prefix": "production",
        "production-alias": "production",
        "production-version": "1",
        "production-canary_version": "2",
        "production-canary_percent": "25",
        "production-routing_field": "customer_id",
        "production-shadows": "3",
        "production-max_p99_ms": "80",
    }

    # When the form sets a canary, a shadow and a bound
    saved = web.post("/serving/models/m/traffic/", form)

    # Then the alias has that policy (as the API reads it)
    assert saved.status_code == 302
    got = api.get("/api/v1/models/m/aliases/production/").json()
    assert got["canary"] == {"version": 2, "percent": 25.0, "routing_field": "customer_id"}
    assert got["shadows"] == [3]
    assert got["bounds"]["max_p99_ms"] == 80.0

    # When the canary is the alias's own version, or a shadow is not a number
    same = web.post("/serving/models/m/traffic/", {**form, "production-canary_version": "1"})
    junk = web.post("/serving/models/m/traffic/", {**form, "production-shadows": "3, x"})

    # Then each is a form error naming the field, and nothing changed
    assert same.status_code == 400
    assert same.context["entries"][0]["form"].errors["canary_version"]
    assert junk.status_code == 400
    assert junk.context["entries"][0]["form"].errors["shadows"]
    assert api.get("/api/v1/models/m/aliases/production/").json() == got


def test_the_rollback_button_asks_then_returns_the_alias(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given production moved from v1 to v2
    versions_of(make_version, "reg", 2)
    api = writer(user)
    policy_put(api, {"version": 1})
    policy_put(api, {"version": 2})
    web = page_client(user)
    assert "Roll back to v1" in web.get("/serving/models/m/traffic/").content.decode()

    # When the button is pressed, it asks first
    asked = web.post("/serving/models/m/traffic/", {"action": "rollback", "alias": "production"})
    assert asked.status_code == 200
    assert 'id="rollback-confirm"' in asked.content.decode()
    assert predict(api, REG_ROW)["X-Model-Version"] == "2"

    # And once confirmed, production is on v1 again
    done = web.post(
        "/serving/models/m/traffic/", {"action": "rollback", "alias": "production", "confirm": "1"}
    )
    assert done.status_code == 302
    assert predict(api, REG_ROW)["X-Model-Version"] == "1"


def test_the_traffic_page_is_the_teams(
    make_version: Callable[..., ModelVersion], user: Any, django_user_model: Any
) -> None:
    # Given a model of team `data`, an outsider and a member without write rights
    versions_of(make_version, "reg", 2)
    policy_put(writer(user), {"version": 1})
    outsider = team_member(django_user_model, "eve", TeamFactory.create(name="other"), apps=())
    reader = team_member(django_user_model, "ray", Group.objects.get(name=DEFAULT_TEAM), apps=())
    form = {"prefix": "production", "production-alias": "production", "production-version": "2"}

    # Then the outsider sees nothing, the reader reads but may not change
    assert page_client(outsider).get("/serving/models/m/traffic/").status_code == 403
    assert page_client(outsider).post("/serving/models/m/traffic/", form).status_code == 403
    reading = page_client(reader).get("/serving/models/m/traffic/")
    assert reading.status_code == 200
    assert "policy-form" not in reading.content.decode()
    assert page_client(reader).post("/serving/models/m/traffic/", form).status_code == 403
    assert predict(writer(user), REG_ROW)["X-Model-Version"] == "1"
    assert Client().get("/serving/models/m/traffic/").status_code == 302  # to the login page


def test_a_removed_canary_is_flagged_in_the_audit_trail(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given a canary removed for breaking its p99 bound
    versions_of(make_version, "reg", 2)
    api = writer(user)
    policy_put(
        api,
        {
            "version": 1,
            "canary": {"version": 2, "percent": 100},
            "bounds": {"max_p99_ms": 0.001, "min_requests": 3},
        },
    )
    for _ in range(4):
        predict(api, REG_ROW)

    # When the team opens the traffic page
    html = page_client(user).get("/serving/models/m/traffic/").content.decode()

    # Then the removal is flagged, with its reason, and the alias has no canary
    assert 'class="canary-removed"' in html
    assert "canary v2 removed: p99 latency" in html
    assert "No canary." in html


def test_the_prediction_log_names_the_version_and_role_that_answered(
    make_version: Callable[..., ModelVersion], user: Any, settings: Any
) -> None:
    # Given every request logged, and production on v1 with a 50 % canary v2
    settings.MLPLATFORM_LOG_SAMPLE_RATE = 1.0
    versions_of(make_version, "reg", 2)
    client = writer(user)
    policy_put(client, {"version": 1, "canary": {"version": 2, "percent": 50}})

    # When callers on both sides predict
    sides = {
        f"c{i}": predict(client, REG_ROW, x_routing_key=f"c{i}", x_request_id=f"q{i}")[
            "X-Model-Version"
        ]
        for i in range(10)
    }

    # Then each log entry names the version that answered and its role, on the log's page too
    entries = {e.request_id: e for e in PredictionLog.objects.filter(model__name="m")}
    for i in range(10):
        entry = entries[f"q{i}"]
        assert str(entry.version.version) == sides[f"c{i}"]
        assert entry.role == ("canary" if sides[f"c{i}"] == "2" else "primary")
    assert set(sides.values()) == {"1", "2"}
    html = page_client(user).get("/serving/models/m/predictions/").content.decode()
    assert "<td>Canary</td>" in html
    assert "<td>Primary</td>" in html
