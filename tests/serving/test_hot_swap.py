"""Alias hot-swap across processes: two gunicorn workers serving the test database."""

import time

import pytest
import requests

from tests.conftest import api_key_for
from tests.servers import gunicorn_server
from tests.serving.conftest import alias_set

pytestmark = pytest.mark.django_db(transaction=True)

TTL = 1.0
SCRAPE_TOKEN = "hot-swap-scrape"
SCRAPE = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}


@pytest.fixture
def gunicorn(tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    with gunicorn_server(
        "hot-swap",
        MLPLATFORM_ALIAS_TTL_SECONDS=str(TTL),
        MLPLATFORM_PRELOAD="production",
        WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        MLPLATFORM_METRICS_TOKEN=SCRAPE_TOKEN,
    ) as (base, _):
        yield base


def test_alias_move_is_served_by_every_worker_within_the_bound(gunicorn, make_version, user):
    v1 = make_version("iris", name="flowers", number=1)
    v2 = make_version("iris", name="flowers", number=2)
    alias_set(v1)
    headers = {"Authorization": f"Token {api_key_for(user)}"}

    def served_versions(count: int) -> set[tuple[int, int]]:
        seen = set()
        for _ in range(count):
            # A new connection each time, so both workers take requests.
            response = requests.post(
                f"{gunicorn}/api/v1/models/flowers/predict",
                json={"instances": [ROW]},
                headers={**headers, "Connection": "close"},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            seen.add(response.json()["version"])
        return seen

    assert served_versions(20) == {1}

    alias_set(v2)
    moved = time.monotonic()
    time.sleep(TTL + 0.1)

    assert served_versions(40) == {2}
    assert time.monotonic() - moved < 30

    # Both workers' counters, aggregated through PROMETHEUS_MULTIPROC_DIR.
    text = requests.get(f"{gunicorn}/metrics", headers=SCRAPE, timeout=10).text
    counts = {
        version: sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("mlplatform_predict_requests_total{")
            and 'model="flowers"' in line
            and f'version="{version}"' in line
        )
        for version in (1, 2)
    }
    assert counts == {1: 20.0, 2: 40.0}


@pytest.fixture
def production_iris(make_version):
    version = make_version("iris", name="flowers", number=1)
    alias_set(version)
    return version


def test_each_worker_loads_the_preloaded_model_before_its_first_request(production_iris, gunicorn):
    # No prediction is made: only the boot-time warm-up can have loaded the model, once in each
    # of the two workers (the gauge is summed over live workers).
    deadline = time.monotonic() + 30
    loaded = None
    while time.monotonic() < deadline:
        text = requests.get(f"{gunicorn}/metrics", headers=SCRAPE, timeout=10).text
        loaded = next(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("mlplatform_models_loaded")
        )
        if loaded == 2:
            break
        time.sleep(0.2)
    assert loaded == 2
