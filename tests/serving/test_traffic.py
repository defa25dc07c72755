"""Canary traffic on an alias, through the prediction protocols: the share of requests the canary
answers, stickiness by routing key, and the version every answer names."""

import json
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient
from sklearn.linear_model import LinearRegression, LogisticRegression

from registry.models import ModelVersion
from serving import traffic
from tests.conftest import client_for
from tests.factories import ModelVersionFactory

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
    for caller, seen in sides.items():
        expected = "2" if traffic.key_share("m", caller) < 50 else "1"
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
    binary = client.generic(
        "POST",
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
