"""The predict lane (serving/api/predict_lane.py) answers exactly as the view would.

Each request is sent twice through the WSGI stack users run (`mlplatform.wsgi.build`): once with
the lane in front of Django, once without it. Status, body and headers must be the same, for
successful predictions and for every kind of bad request an attacker or a careless client sends.
"""

import gzip
import io
import json
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.utils import timezone
from knox.crypto import hash_token
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from accounts.models import ApiToken
from mlplatform.api import token_cache_clear
from mlplatform.wsgi import build
from registry.models import ModelAlias
from serving import predictionlog, services, shadows, traffic
from serving.engines import EngineUnavailable
from serving.models import PredictionLog
from tests.conftest import api_key_for
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db(transaction=True)

LANE = ["serving.api.predict_lane.NativePredictLane"]
IRIS_ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}


class Counting:
    """Django's handler, counting the requests that reach it."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.handler(environ, start_response)


def call(app: Any, path: str, body: bytes = b"", **headers: str) -> tuple[int, dict, bytes]:
    """One request through a WSGI app, as gunicorn makes it."""
    environ = {
        "REQUEST_METHOD": headers.pop("method", "POST"),
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": headers.pop("host", "testserver"),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": headers.pop("scheme", "http"),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: list, exc_info: Any = None) -> None:
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(response_headers)

    chunks = app(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return answer["status"], answer["headers"], content


@pytest.fixture
def stacks(settings: Any) -> Iterator[Callable[[], tuple[Any, Counting, Any]]]:
    """(the stack with the lane, the Django handler behind it, the stack without the lane)."""
    settings.MLPLATFORM_LOG_SAMPLE_RATE = 0.0
    token_cache_clear()

    def make() -> tuple[Any, Counting, Any]:
        settings.MLPLATFORM_WSGI_LAYERS = LANE
        behind = Counting()
        lane = build(behind)
        settings.MLPLATFORM_WSGI_LAYERS = []
        plain = build(WSGIHandler())
        settings.MLPLATFORM_WSGI_LAYERS = LANE
        return lane, behind, plain

    yield make
    token_cache_clear()


def same_answer(lane: Any, plain: Any, path: str, body: bytes, **headers: str) -> int:
    """Sends the request through both stacks; asserts the answers match; returns the status."""
    headers.setdefault("x_request_id", "req-1")
    with_lane = call(lane, path, body, **headers)
    without = call(plain, path, body, **headers)
    assert with_lane[0] == without[0], (with_lane, without)
    assert with_lane[2] == without[2]
    # The lane states the length; Django leaves it to the server (chunked).
    lane_headers = {k: v for k, v in with_lane[1].items() if k != "Content-Length"}
    assert lane_headers == without[1]
    return with_lane[0]


def records(*rows: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"instances": list(rows), **extra}).encode()


def test_a_prediction_is_answered_by_the_lane_as_the_view_answers_it(
    stacks: Any, make_version: Any, user: Any
) -> None:
    # Given a ready iris classifier with its production alias, and a token
    version = make_version("iris")
    ModelAlias.objects.create(model=version.model, alias="production", version=version)
    lane, behind, plain = stacks()
    key = api_key_for(user)
    auth = {"authorization": f"Token {key}"}

    # When predictions are asked on each native route, with records and with columns
    bodies = [
        records(IRIS_ROW),
        records(IRIS_ROW, IRIS_ROW, **{"return": ["predict", "predict_proba"]}),
        json.dumps({"inputs": {k: [v, v] for k, v in IRIS_ROW.items()}}).encode(),
    ]
    paths = [
        "/api/v1/models/iris/predict",
        "/api/v1/models/iris/versions/1/predict",
        "/api/v1/models/iris/aliases/production/predict",
    ]
    for path in paths:
        for body in bodies:
            # Then both stacks answer alike, and Django never saw the request
            assert same_answer(lane, plain, path, body, **auth) == 200
    assert behind.calls == 0
    _, headers, content = call(lane, paths[0], bodies[1], **auth)
    answer = json.loads(content)
    assert answer["predictions"] == ["setosa", "setosa"]
    assert answer["classes"] == ["setosa", "versicolor", "virginica"]
    assert headers["Content-Length"] == str(len(content))
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Model-Version"] == "1"


def test_every_bad_request_gets_djangos_own_answer(
    stacks: Any, make_version: Any, user: Any, django_user_model: Any
) -> None:
    # Given a ready model, a model without predict_proba, and tokens of several kinds
    make_version("iris")
    make_version("reg")
    lane, behind, plain = stacks()
    good = api_key_for(user)
    scoped = api_key_for(user, scope=ApiToken.Scope.PREDICT, predict_models=["reg"])
    expired = api_key_for(user)
    ApiToken.objects.filter(digest=hash_token(expired)).update(expiry=timezone.now() - timedelta(1))
    idle = django_user_model.objects.create_user("idle", password="x-pw-12345")
    inactive = api_key_for(idle)
    idle.is_active = False
    idle.save()
    path = "/api/v1/models/iris/predict"
    row = records(IRIS_ROW)

    cases: list[tuple[str, bytes, dict[str, str]]] = [
        (path, row, {}),  # no credentials
        (path, row, {"authorization": "Token not-a-key"}),
        (path, row, {"authorization": f"Token {good} extra"}),
        (path, row, {"authorization": f"Basic {good}"}),
        (path, row, {"authorization": f"Token {scoped}"}),  # scope names another model
        (path, row, {"authorization": f"Token {expired}"}),
        (path, row, {"authorization": f"Token {inactive}"}),
        ("/api/v1/models/nope/predict", row, {"authorization": f"Token {good}"}),
        ("/api/v1/models/iris/versions/9/predict", row, {"authorization": f"Token {good}"}),
        ("/api/v1/models/iris/aliases/gone/predict", row, {"authorization": f"Token {good}"}),
        (path, b"", {"authorization": f"Token {good}"}),
        (path, b"{not json", {"authorization": f"Token {good}"}),
        (path, b'{"instances": [{"f0": NaN}]}', {"authorization": f"Token {good}"}),
        (path, b"[" * 100_000, {"authorization": f"Token {good}"}),
        (path, b"\xff\xfe\x00", {"authorization": f"Token {good}"}),
        (path, b'{"instances": [], "x": 1}', {"authorization": f"Token {good}"}),
        (path, records({**IRIS_ROW, "f0": "five"}), {"authorization": f"Token {good}"}),
        (path, records({"f0": 1.0}), {"authorization": f"Token {good}"}),
        (path, records(IRIS_ROW, **{"return": ["explain"]}), {"authorization": f"Token {good}"}),
        (path, row, {"authorization": f"Token {good}", "host": "evil.example"}),
        (path, row, {"authorization": f"Token {good}", "method": "GET"}),
        (path, row, {"authorization": f"Token {good}", "method": "PUT"}),
        # predict_proba of a regressor: refused by the prediction itself, answered by the lane
        (
            "/api/v1/models/reg/predict",
            records({"f0": 0.1, "f1": 0.2, "f2": 0.3}, **{"return": ["predict_proba"]}),
            {"authorization": f"Token {good}"},
        ),
    ]
    statuses = []
    for case_path, body, headers in cases:
        # When each is sent with and without the lane, then the answers are the same
        statuses.append(same_answer(lane, plain, case_path, body, **headers))
    assert 200 not in statuses
    assert set(statuses) <= {400, 401, 403, 404, 405, 409}
    # And all but the last (a prediction error) reached Django through the lane
    assert behind.calls == len(cases) - 1


def test_a_body_the_lane_declines_reaches_django_whole(
    stacks: Any, make_version: Any, user: Any
) -> None:
    # Given JSON in UTF-16, which Django's view decodes and the lane leaves to it
    make_version("iris")
    lane, behind, plain = stacks()
    body = json.dumps({"instances": [IRIS_ROW]}).encode("utf-16")
    # When it is sent through the lane
    status = same_answer(
        lane,
        plain,
        "/api/v1/models/iris/predict",
        body,
        authorization=(f"Token {api_key_for(user)}"),
    )
    # Then Django read the whole body the lane had already read, and predicted
    assert status == 200
    assert behind.calls == 1


def test_a_compressed_body_is_djangos_to_inflate(stacks: Any, make_version: Any, user: Any) -> None:
    # Given a gzip-compressed request, and a plain one that names an encoding nobody supports
    make_version("iris")
    lane, behind, plain = stacks()
    auth = {"authorization": f"Token {api_key_for(user)}"}
    path = "/api/v1/models/iris/predict"
    body = gzip.compress(records(IRIS_ROW))

    # When they are sent through the lane and without it
    inflated = same_answer(lane, plain, path, body, content_encoding="gzip", **auth)
    refused = same_answer(lane, plain, path, records(IRIS_ROW), content_encoding="br", **auth)

    # Then the answers are the same, and both were Django's (the lane never inflates)
    assert (inflated, refused) == (200, 415)
    assert behind.calls == 2
    _, headers, content = call(lane, path, body, content_encoding="gzip", **auth)
    assert json.loads(content)["predictions"] == ["setosa"]
    assert headers["X-Model-Version"] == "1"


def test_https_redirects_and_hsts_are_djangos(
    stacks: Any, make_version: Any, user: Any, settings: Any
) -> None:
    # Given production's HTTPS settings behind a proxy
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    make_version("iris")
    lane, behind, plain = stacks()
    auth = {"authorization": f"Token {api_key_for(user)}"}
    path = "/api/v1/models/iris/predict"
    # When a request arrives over plain HTTP, then Django redirects it
    assert same_answer(lane, plain, path, records(IRIS_ROW), **auth) == 301
    # When it arrives over HTTPS, then the lane answers with Django's HSTS header
    status = same_answer(lane, plain, path, records(IRIS_ROW), x_forwarded_proto="https", **auth)
    assert status == 200
    assert behind.calls == 1
    _, headers, _ = call(lane, path, records(IRIS_ROW), x_forwarded_proto="https", **auth)
    assert headers["Strict-Transport-Security"].startswith("max-age=3600")


def test_with_throttling_configured_django_answers(
    stacks: Any, make_version: Any, user: Any, settings: Any
) -> None:
    # Given a per-user rate limit (which only DRF's dispatch applies)
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "1000/min"},
    }
    make_version("iris")
    lane, behind, _ = stacks()
    # When a prediction is asked, then it goes through Django
    status, _, _ = call(
        lane,
        "/api/v1/models/iris/predict",
        records(IRIS_ROW),
        authorization=f"Token {api_key_for(user)}",
    )
    assert status == 200
    assert behind.calls == 1


def test_a_failed_prediction_runs_once_and_counts_once(
    stacks: Any, make_version: Any, user: Any, monkeypatch: Any
) -> None:
    # Given a version whose engine fails (as a crashed runner does)
    make_version("iris")
    lane, behind, _ = stacks()
    calls = []

    def failing(**kwargs: Any) -> Any:
        calls.append(kwargs)
        raise EngineUnavailable("iris version 1: its runner stopped (test)")

    monkeypatch.setattr(services, "prediction_make", failing)
    # When a prediction is asked through the lane
    status, _, content = call(
        lane,
        "/api/v1/models/iris/predict",
        records(IRIS_ROW),
        authorization=f"Token {api_key_for(user)}",
    )
    # Then the 503 names the failure, and the prediction was attempted once, not again by Django
    assert status == 503
    assert "runner stopped" in json.loads(content)["detail"]
    assert len(calls) == 1
    assert behind.calls == 0


def test_the_lane_logs_and_ends_requests_as_django_does(
    stacks: Any, make_version: Any, user: Any, settings: Any
) -> None:
    # Given every prediction logged, and connections that live one request (CONN_MAX_AGE=0, as
    # the test settings have), with this thread's connection open
    settings.MLPLATFORM_LOG_SAMPLE_RATE = 1.0
    version = make_version("iris")
    lane, behind, _ = stacks()
    key = api_key_for(user)
    assert connection.connection is not None
    # When a prediction is answered by the lane
    status, headers, _ = call(
        lane,
        "/api/v1/models/iris/predict",
        records(IRIS_ROW),
        authorization=f"Token {key}",
        x_request_id="trace-42",
    )
    assert status == 200
    assert behind.calls == 0
    # Then the request closed its database connection as Django's end of request does, and the
    # prediction is in the log
    assert connection.connection is None
    predictionlog.flush()
    entry = PredictionLog.objects.get(request_id="trace-42")
    assert entry.version_id == version.pk
    assert entry.protocol == PredictionLog.Protocol.NATIVE
    assert headers["X-Request-ID"] == "trace-42"


def test_an_alias_with_a_canary_and_a_shadow_is_answered_by_the_lane_as_by_the_view(
    stacks: Any, make_version: Any, user: Any
) -> None:
    # Given production on iris v1 with a 50 % canary v2 and a shadow v3 (routes not cached)
    traffic.cache_clear()
    primary = make_version("iris")
    canary = ModelVersionFactory.create(
        model=primary.model,
        estimator=LogisticRegression(C=0.01, max_iter=300).fit(*_iris_xy()),
        input_example=primary.input_example,
    )
    shadow = ModelVersionFactory.create(
        model=primary.model,
        estimator=LogisticRegression(max_iter=300).fit(*_iris_xy()),
        input_example=primary.input_example,
    )
    link = ModelAlias.objects.create(
        model=primary.model,
        alias="production",
        version=primary,
        canary_version=canary,
        canary_percent=50.0,
        routing_field="f0",
    )
    link.shadows.set([shadow])
    lane, behind, plain = stacks()
    auth = {"authorization": f"Token {api_key_for(user)}"}
    paths = ["/api/v1/models/iris/predict", "/api/v1/models/iris/aliases/production/predict"]

    # When callers with routing keys (a header, or the policy's field) predict on both routes
    answered = set()
    for caller in range(12):
        for path in paths:
            keyed = records(IRIS_ROW, **{"return": ["predict", "predict_proba"]})
            assert same_answer(lane, plain, path, keyed, x_routing_key=f"c{caller}", **auth) == 200
            by_field = records({**IRIS_ROW, "f0": 4.0 + caller / 10})
            assert same_answer(lane, plain, path, by_field, **auth) == 200
            _, headers, _ = call(lane, path, keyed, x_routing_key=f"c{caller}", **auth)
            answered.add(headers["X-Model-Version"])

    # Then both stacks answered alike, the lane answered all of it, and both sides answered
    assert behind.calls == 0
    assert answered == {"1", "2"}
    # And a version's own route ignores the policy
    own = "/api/v1/models/iris/versions/1/predict"
    _, headers, _ = call(lane, own, records(IRIS_ROW), x_routing_key="c1", **auth)
    assert headers["X-Model-Version"] == "1"
    assert shadows.wait_idle(timeout=30)


def _iris_xy() -> tuple[Any, Any]:
    iris = load_iris()
    return iris.data, iris.target_names[iris.target]
