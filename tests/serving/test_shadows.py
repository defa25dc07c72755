"""Shadow versions score copies of an alias's requests off the request path: what they find
(agreement with the answer given, or the mean absolute difference), where it shows (the traffic
page, /metrics, the prediction log), and that they change nothing for the caller."""

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, mean_absolute_error

from registry.models import ModelVersion
from serving import shadows, traffic
from serving.models import PredictionLog
from serving.runners import runners_stop
from tests.factories import ModelVersionFactory
from tests.serving.test_runners import crafted
from tests.serving.test_traffic import other_classifier, policy_put, versions_of, writer

pytestmark = pytest.mark.django_db(transaction=True)

IRIS = ["f0", "f1", "f2", "f3"]


@pytest.fixture(autouse=True)
def _fresh(settings: Any) -> Any:
    traffic.windows_clear()
    traffic.cache_clear()
    settings.MLPLATFORM_METRICS_TOKEN = "scrape-token"
    yield
    shadows.wait_idle(timeout=30)  # nothing of this test is scored during the next
    runners_stop()


def iris_rows(count: int, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [
        dict(zip(IRIS, map(float, rng.normal(5, 2, size=4)), strict=True)) for _ in range(count)
    ]


def shadow_metric(name: str, version: int) -> float:
    """A shadow counter of model `m` from /metrics, as Prometheus scrapes it."""
    response = Client().get("/metrics", headers={"Authorization": "Bearer scrape-token"})
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == {"model": "m", "version": str(version)}:
                return float(sample.value)
    return 0.0


def page_figures(user: Any) -> dict[int, Any]:
    """The traffic page's shadow figures of `production`, by version."""
    client = Client()
    client.force_login(user)
    response = client.get("/serving/models/m/traffic/")
    assert response.status_code == 200
    (entry,) = [e for e in response.context["entries"] if e["traffic"].link.alias == "production"]
    return {f.version: f for f in entry["traffic"].shadows}


SLEEPY = """
import time

import numpy as np


class Model:
    def predict(self, X):
        time.sleep(0.1)
        return np.array(["setosa"] * len(X), dtype=object)


model = Model()
"""


def slow_version(primary: ModelVersion) -> ModelVersion:
    """A version of the model served by a sandboxed model runner whose model takes 100 ms per
    predict (a crafted artifact standing for a model that got past the scan, as in
    test_runners.py; the signature is the iris classifier's)."""
    estimator, _ = _iris()
    version: ModelVersion = ModelVersionFactory.create(
        model=primary.model,
        estimator=estimator,
        artifact_bytes=crafted(SLEEPY),
        input_example=primary.input_example,
    )
    ModelVersion.objects.filter(pk=version.pk).update(
        engine=ModelVersion.Engine.PYTHON, graph="", graph_sha256=""
    )
    version.refresh_from_db()
    return version


def _iris() -> tuple[Any, Any]:
    iris = load_iris()
    return LogisticRegression(max_iter=500).fit(iris.data, iris.target_names[iris.target]), None


def wide_classifier() -> Any:
    """A classifier that needs a fifth column the requests lack: it errors on every copy."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 5))
    return LinearRegression().fit(x, x.sum(axis=1))


def test_agreement_of_an_identical_shadow_is_one_and_of_another_is_measured(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given production on an iris classifier v1, a copy of it v2 and another classifier v3
    (primary, _) = versions_of(make_version, "iris", 2)
    ModelVersionFactory.create(
        model=primary.model, estimator=other_classifier(), input_example=primary.input_example
    )
    client = writer(user)
    policy_put(client, {"version": 1, "shadows": [2, 3]})

    # When requests of one and of several rows come
    rows = iris_rows(60)
    chunks = [rows[start : start + (1 if start % 2 else 3)] for start in range(0, 60, 3)]
    answers = []
    for chunk in chunks:
        response = client.post("/api/v1/models/m/predict", {"instances": chunk}, format="json")
        assert response.status_code == 200
        answers += response.json()["predictions"]
    assert shadows.wait_idle(timeout=30)

    # Then the copy agrees on every row, and the other as scikit-learn counts it
    sent = [
        row for start in range(0, 60, 3) for row in rows[start : start + (1 if start % 2 else 3)]
    ]
    other = client.post("/api/v1/models/m/versions/3/predict", {"instances": sent}, format="json")
    figures = page_figures(user)
    assert figures[2].agreement == 1.0
    assert figures[2].compared_rows == figures[3].compared_rows == len(sent)
    expected = accuracy_score(answers, other.json()["predictions"])
    assert 0 < expected < 1
    assert figures[3].agreement == pytest.approx(expected)
    assert figures[3].requests == 20
    assert figures[3].errors == 0


def test_a_regression_shadow_shows_its_mean_absolute_difference(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given production on a regressor v1 and a different regressor v2 as its shadow
    (primary,) = versions_of(make_version, "reg", 1)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 3))
    ModelVersionFactory.create(
        model=primary.model,
        estimator=LinearRegression().fit(x, x @ np.array([1.5, -1.0, 0.0])),
        input_example=primary.input_example,
    )
    client = writer(user)
    policy_put(client, {"version": 1, "shadows": [2]})

    # When requests come
    rows = [dict(zip(["f0", "f1", "f2"], map(float, r), strict=True)) for r in x[:20]]
    answers = [
        client.post("/api/v1/models/m/predict", {"instances": [row]}, format="json").json()[
            "predictions"
        ][0]
        for row in rows
    ]
    assert shadows.wait_idle(timeout=30)

    # Then the page shows the mean absolute difference scikit-learn computes
    other = client.post("/api/v1/models/m/versions/2/predict", {"instances": rows}, format="json")
    figures = page_figures(user)
    assert figures[2].agreement is None
    assert figures[2].mean_abs_difference == pytest.approx(
        mean_absolute_error(answers, other.json()["predictions"])
    )


def test_shadow_predictions_are_logged_under_the_callers_request_id(
    make_version: Callable[..., ModelVersion], user: Any, settings: Any
) -> None:
    # Given every request logged, and production with a shadow
    settings.MLPLATFORM_LOG_SAMPLE_RATE = 1.0
    versions_of(make_version, "iris", 2)
    client = writer(user)
    policy_put(client, {"version": 1, "shadows": [2]})

    # When a request comes with its id
    row = iris_rows(1)[0]
    client.post(
        "/api/v1/models/m/predict",
        {"instances": [row]},
        format="json",
        headers={"X-Request-ID": "req-shadowed"},
    )
    assert shadows.wait_idle(timeout=30)

    # Then the log has the caller's entry and the shadow's, joined by the request id
    entries = PredictionLog.objects.filter(request_id="req-shadowed").order_by("role")
    assert [(e.role, e.version.version) for e in entries] == [("primary", 1), ("shadow", 2)]
    assert entries[0].inputs == entries[1].inputs
    assert entries[0].outputs["predictions"] == entries[1].outputs["predictions"]
    # And the log's CSV export names each entry's role
    web = Client()
    web.force_login(user)
    csv: Any = web.get("/serving/models/m/predictions/?format=csv")
    text = b"".join(csv.streaming_content).decode()
    assert "req-shadowed" in text
    assert ",shadow," in text


def test_a_failing_and_a_slow_shadow_change_nothing_for_the_caller(
    make_version: Callable[..., ModelVersion], user: Any, settings: Any
) -> None:
    # Given production on an iris classifier, a shadow that fails on every copy (it needs a
    # fifth column) and one that takes 100 ms a predict; figures written in the background, as
    # servers run
    settings.MLPLATFORM_LOG_BACKGROUND = True
    (primary,) = versions_of(make_version, "iris", 1)
    ModelVersionFactory.create(model=primary.model, estimator=wide_classifier())
    slow_version(primary)
    client = writer(user)
    rows = iris_rows(40, seed=1)
    # (the slow shadow's runner process is started once, before the timing)
    policy_put(client, {"version": 1, "shadows": [2, 3]})
    client.post("/api/v1/models/m/predict", {"instances": rows[:1]}, format="json")
    assert shadows.wait_idle(timeout=60)
    policy_put(client, {"version": 1, "shadows": []})
    errors_before = shadow_metric("mlplatform_shadow_errors_total", 2)
    scored_before = shadow_metric("mlplatform_shadow_requests_total", 3)

    def run() -> tuple[list[tuple[int, bytes]], float]:
        answers, took = [], []
        for i, row in enumerate(rows):
            started = time.perf_counter()
            response = client.post(
                "/api/v1/models/m/predict",
                {"instances": [row, row]},
                format="json",
                headers={"X-Request-ID": f"r{i}"},
            )
            took.append(time.perf_counter() - started)
            answers.append((response.status_code, response.content))
        return answers, statistics.median(took)

    # When the same requests come without shadows, then with both
    alone, median_alone = run()
    policy_put(client, {"version": 1, "shadows": [2, 3]})
    shadowed, median_shadowed = run()

    # Then every answer is byte for byte the same, and as fast (a generous margin: the
    # shadow work shares this machine's cores)
    assert shadowed == alone
    assert median_shadowed < 2 * median_alone + 0.005, (median_alone, median_shadowed)
    # And the shadows did their work off the request path: the failing one counted its errors
    assert shadows.wait_idle(timeout=60)
    assert shadow_metric("mlplatform_shadow_errors_total", 2) - errors_before == len(rows)
    assert shadow_metric("mlplatform_shadow_requests_total", 3) - scored_before == len(rows)
    figures = page_figures(user)
    assert (figures[2].requests, figures[2].errors) == (len(rows) + 1, len(rows) + 1)
    assert figures[3].errors == 0
    assert figures[3].latency_p50_ms is not None


def test_a_full_queue_drops_copies_and_counts_them(
    make_version: Callable[..., ModelVersion], user: Any, settings: Any
) -> None:
    # Given a queue of one copy, and a slow shadow
    settings.MLPLATFORM_SHADOW_QUEUE_SIZE = 1
    (primary,) = versions_of(make_version, "iris", 1)
    slow_version(primary)
    client = writer(user)
    policy_put(client, {"version": 1, "shadows": [2]})
    dropped_before = shadow_metric("mlplatform_shadow_drops_total", 2)
    scored_before = shadow_metric("mlplatform_shadow_requests_total", 2)

    # When requests of many rows come faster than the shadow scores them
    rows = iris_rows(20, seed=2)
    for _ in range(15):
        response = client.post("/api/v1/models/m/predict", {"instances": rows}, format="json")
        assert response.status_code == 200
    assert shadows.wait_idle(timeout=60)

    # Then most copies were dropped, each counted once, and every copy is accounted for
    dropped = shadow_metric("mlplatform_shadow_drops_total", 2) - dropped_before
    scored = shadow_metric("mlplatform_shadow_requests_total", 2) - scored_before
    assert dropped >= 5
    assert dropped + scored == 15
    assert page_figures(user)[2].drops == dropped
