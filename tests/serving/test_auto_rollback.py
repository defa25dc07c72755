"""A canary that breaks its alias's bounds (error rate, p99 latency) is removed automatically:
recorded in the audit trail, and the next requests are answered by the alias's own version."""

from collections.abc import Callable
from typing import Any

import pytest

from registry.models import AliasChange, ModelAlias, ModelVersion
from serving import traffic
from tests.factories import ModelVersionFactory
from tests.serving.test_traffic import REG_ROW, policy_put, predict, reg4, versions_of, writer


@pytest.fixture(autouse=True)
def _fresh_windows() -> None:
    """Each test judges its canary afresh (the windows are per process)."""
    traffic.windows_clear()
    traffic.cache_clear()


def test_a_canary_above_the_error_rate_is_removed(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given production on v1 (three columns) and a 50 % canary v2 that needs a fourth column,
    # with bounds: at most 20 % errors over at least 10 requests
    (primary,) = versions_of(make_version, "reg", 1)
    ModelVersionFactory.create(model=primary.model, estimator=reg4())
    client = writer(user)
    policy_put(
        client,
        {
            "version": 1,
            "canary": {"version": 2, "percent": 50},
            "bounds": {"max_error_rate": 0.2, "min_requests": 10, "window_seconds": 60},
        },
    )

    # When callers send three-column requests
    statuses = [
        (answer.status_code, answer["X-Model-Version"])
        for answer in (predict(client, REG_ROW, x_routing_key=f"c{i}") for i in range(60))
    ]

    # Then the canary answered 400s until it had ten answers, and then it was removed
    canary_errors = [s for s in statuses if s == (400, "2")]
    assert len(canary_errors) == 10
    link = ModelAlias.objects.get(alias="production")
    assert link.canary_version is None
    assert link.bounds == {}
    change = AliasChange.objects.filter(kind=AliasChange.Kind.CANARY_REMOVED).get()
    assert "canary v2 removed: error rate 100.0%" in change.reason
    # And every request after it is answered by v1
    last_error = max(i for i, status in enumerate(statuses) if status == (400, "2"))
    after = statuses[last_error + 1 :]
    assert after
    assert set(after) == {(200, "1")}
    history = client.get("/api/v1/models/m/alias-history/")
    assert history.json()[0]["kind"] == "canary_removed"


def test_a_canary_above_the_p99_latency_is_removed(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given a canary answering every request, with a p99 bound no real request can meet
    versions_of(make_version, "reg", 2)
    client = writer(user)
    policy_put(
        client,
        {
            "version": 1,
            "canary": {"version": 2, "percent": 100},
            "bounds": {"max_p99_ms": 0.001, "min_requests": 5},
        },
    )

    # When requests come
    answered = [predict(client, REG_ROW)["X-Model-Version"] for _ in range(12)]

    # Then the canary answered the first five (all 200) and then the primary took over
    assert answered == ["2"] * 5 + ["1"] * 7
    change = AliasChange.objects.filter(kind=AliasChange.Kind.CANARY_REMOVED).get()
    assert "p99 latency" in change.reason
    assert change.policy["canary"] is None


def test_a_canary_within_its_bounds_stays(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given a canary with generous bounds
    versions_of(make_version, "reg", 2)
    client = writer(user)
    policy_put(
        client,
        {
            "version": 1,
            "canary": {"version": 2, "percent": 100},
            "bounds": {"max_error_rate": 0.5, "max_p99_ms": 10_000, "min_requests": 5},
        },
    )
    # When it answers well
    answered = {predict(client, REG_ROW)["X-Model-Version"] for _ in range(20)}
    # Then it keeps answering, and nothing was removed
    assert answered == {"2"}
    assert not AliasChange.objects.filter(kind=AliasChange.Kind.CANARY_REMOVED).exists()
