"""/metrics, the prediction log, the model cache and warm-up."""

import csv
import io
import time

import pytest

from jobs.models import Job
from mlplatform.api import token_cache_clear
from serving import cache, predictionlog
from serving.models import PredictionLog

pytestmark = pytest.mark.django_db

ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}


def _metric(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


@pytest.fixture
def scraper(anon_client, settings):
    settings.MLPLATFORM_METRICS_TOKEN = "scrape-secret"
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer scrape-secret")
    return anon_client


def test_metrics_need_the_scrape_token_or_a_staff_token(anon_client, api_client, user, settings):
    settings.MLPLATFORM_METRICS_TOKEN = "scrape-secret"
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer wrong")

    assert anon_client.get("/metrics").status_code == 401
    assert api_client.get("/metrics").status_code == 401  # a token, but not staff
    user.is_staff = True
    user.save()
    token_cache_clear()
    assert api_client.get("/metrics").status_code == 200
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert anon_client.get("/metrics").status_code == 200


def test_metrics_count_requests_errors_cache_and_jobs(api_client, scraper, iris):
    Job.objects.create(kind=Job.Kind.BATCH_SCORING, status=Job.Status.SUCCEEDED, progress_done=70)
    Job.objects.create(kind=Job.Kind.BATCH_SCORING, status=Job.Status.RUNNING, progress_done=5)
    before = scraper.get("/metrics").content.decode()
    ok_prefix = (
        'mlplatform_predict_requests_total{model="iris",protocol="native",status="200",version="1"}'
    )
    err_prefix = 'mlplatform_predict_errors_total{model="iris",protocol="mlflow",version="1"}'

    api_client.post("/api/v1/models/iris/predict", {"instances": [ROW]}, format="json")
    api_client.post("/mlflow/models/iris/invocations", {"instances": [{"f0": 1}]}, format="json")

    response = scraper.get("/metrics")
    text = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert _metric(text, ok_prefix) == _metric(before, ok_prefix) + 1
    assert _metric(text, err_prefix) == _metric(before, err_prefix) + 1
    assert "mlplatform_predict_latency_seconds_bucket{" in text
    assert "mlplatform_model_cache_total" in text
    assert "mlplatform_models_loaded" in text
    assert 'mlplatform_jobs{kind="batch_scoring",status="succeeded"} 1.0' in text
    assert "mlplatform_batch_rows_scored 75.0" in text


def test_prediction_log_is_sampled_and_exported(api_client, client, iris, settings, user):
    settings.MLPLATFORM_LOG_SAMPLE_RATE = 1.0
    api_client.post(
        "/api/v1/models/iris/predict",
        {"instances": [ROW]},
        format="json",
        HTTP_X_REQUEST_ID="trace-1",
    )
    settings.MLPLATFORM_LOG_SAMPLE_RATE = 0.0
    api_client.post("/api/v1/models/iris/predict", {"instances": [ROW]}, format="json")

    entry = PredictionLog.objects.get()
    assert entry.request_id == "trace-1"
    assert entry.version == iris
    assert entry.inputs == {name: [value] for name, value in ROW.items()}
    assert entry.outputs == {"predictions": ["setosa"]}
    assert entry.latency_ms > 0

    client.force_login(user)
    page = client.get("/serving/models/iris/predictions/")
    assert page.status_code == 200
    assert "trace-1" in page.content.decode()
    export = client.get("/serving/models/iris/predictions/?format=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert export["Content-Type"].startswith("text/csv")
    assert rows[0]["request_id"] == "trace-1"
    assert rows[0]["f0"] == "5.1"
    assert rows[0]["prediction"] == "setosa"


@pytest.mark.django_db(transaction=True)
def test_background_writer_flushes_off_the_request_path(api_client, iris, settings):
    settings.MLPLATFORM_LOG_SAMPLE_RATE = 1.0
    settings.MLPLATFORM_LOG_BACKGROUND = True
    settings.MLPLATFORM_LOG_FLUSH_SECONDS = 0.05

    for _ in range(3):
        api_client.post("/api/v1/models/iris/predict", {"instances": [ROW]}, format="json")

    deadline = time.monotonic() + 10
    while PredictionLog.objects.count() < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    predictionlog.flush()
    assert PredictionLog.objects.count() == 3


def test_cache_loads_once_and_evicts_least_recent(make_version, settings):
    settings.MLPLATFORM_MODEL_CACHE_SIZE = 1
    cache.cache_clear()
    iris = make_version("iris")
    reg = make_version("reg")

    first = cache.engine_for(iris)
    assert cache.engine_for(iris) is first
    cache.engine_for(reg)

    assert cache.cache_stats() == {"hits": 1, "misses": 2, "loaded": 1}
    assert cache.engine_for(iris) is not first  # evicted, loaded again


def test_tampered_graph_refuses_to_serve(api_client, iris):
    cache.cache_clear()
    with open(iris.graph.path, "ab") as stream:
        stream.write(b"tampered")

    response = api_client.post("/api/v1/models/iris/predict", {"instances": [ROW]}, format="json")

    assert response.status_code == 503
    assert "sha256" in response.json()["detail"]


def test_preload_warms_production_before_first_request(make_version, settings, monkeypatch):
    from serving import services
    from tests.serving.conftest import alias_set

    settings.MLPLATFORM_PRELOAD = ["production"]
    monkeypatch.setattr(services, "_preloaded", False)
    monkeypatch.setattr(services, "_warmed", set())
    cache.cache_clear()
    version = make_version("reg")
    alias_set(version)

    services.preload_once()

    assert cache._cache.contains(version)
    assert version.sha256 in services._warmed
