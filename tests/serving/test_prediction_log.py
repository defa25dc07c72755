"""The prediction log at scale: a per-model sample rate set through the model's API, Parquet
partitions in the layout monitoring reads (one row per predicted row, inputs as the model got
them, entity keys and served features, outputs, roles, request ids), retention, and the 4xx
rejections counted per field."""

import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Sum
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient
from scipy.stats import binom

from features.models import FeatureGroup
from registry.models import ModelVersion
from serving import predictionlog, rejectionstats, selectors, shadows, tasks, traffic
from serving.models import PredictionLog, RejectionMinute
from tests.conftest import client_for, team_member
from tests.factories import FeatureServiceFactory, TeamFactory
from tests.serving.test_enrichment import expected, group_with_values
from tests.serving.test_traffic import policy_put, versions_of, writer

pytestmark = pytest.mark.django_db

IRIS_ROW = {"f0": 5.1, "f1": 3.5, "f2": 1.4, "f3": 0.2}


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    """A media folder of the test's own: only this test's partitions are seen."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


def logged(model: str) -> pa.Table:
    """Every log partition of `model` from an hour ago to an hour ahead, read as monitoring
    reads them (DuckDB, by name), ordered by request id, role and row."""
    model_id = ModelVersion.objects.filter(model__name=model).first().model_id  # type: ignore[union-attr]
    now = timezone.now()
    names = predictionlog.partition_names(
        model_id, now - timedelta(hours=1), now + timedelta(hours=1)
    )
    if not names:
        return pa.table({})
    paths = ", ".join(f"'{default_storage.path(n)}'" for n in names)
    query = (
        f"SELECT * FROM read_parquet([{paths}], union_by_name=true) ORDER BY request_id, role, row"  # noqa: S608
    )
    relation = duckdb.sql(query)
    assert relation is not None
    return relation.to_arrow_table()


def rate_patch(client: APIClient, model: str, rate: Any) -> Any:
    return client.patch(f"/api/v1/models/{model}/", {"log_sample_rate": rate}, format="json")


def test_every_prediction_at_rate_one_is_a_parquet_row_with_its_exact_values(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given a pipeline on a number and a category, logged at rate 1 (set through the API)
    version = make_version("colors")
    client = writer(user)
    assert rate_patch(client, "colors", 1.0).status_code == 200

    # When a two-row request asks for labels and probabilities, with its id
    started = timezone.now()
    rows = [{"x": 0.5, "color": "red"}, {"x": -1.25, "color": "blue"}]
    response = client.post(
        "/api/v1/models/colors/predict",
        {"instances": rows, "return": ["predict", "predict_proba"]},
        format="json",
        headers={"X-Request-ID": "req-colors"},
    )
    assert response.status_code == 200
    answer = response.json()

    # Then the partition holds one row per predicted row, with the contract's types and values
    table = logged("colors")
    schema = table.schema
    assert schema.field("request_id").type == pa.string()
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("version").type == pa.int32()
    assert schema.field("row").type == pa.int32()
    assert schema.field("latency_ms").type == pa.float64()
    assert schema.field("in__x").type == pa.float64()
    assert schema.field("in__color").type == pa.string()
    assert schema.field("out__prediction").type == pa.string()
    assert schema.field("out__proba__0").type == pa.float64()
    assert schema.field("out__proba__1").type == pa.float64()
    data = table.to_pylist()
    assert [r["request_id"] for r in data] == ["req-colors", "req-colors"]
    assert [r["row"] for r in data] == [0, 1]
    assert {(r["version"], r["role"], r["protocol"]) for r in data} == {(1, "primary", "native")}
    assert [(r["in__x"], r["in__color"]) for r in data] == [(0.5, "red"), (-1.25, "blue")]
    assert [r["out__prediction"] for r in data] == [str(p) for p in answer["predictions"]]
    assert [[r["out__proba__0"], r["out__proba__1"]] for r in data] == answer["probabilities"]
    assert all(started <= r["ts"] <= timezone.now() for r in data)
    assert all(r["latency_ms"] > 0 for r in data)
    # And the partition is named by model, UTC date and hour, and version
    (name,) = predictionlog.partition_names(
        version.model_id, started - timedelta(hours=1), timezone.now() + timedelta(hours=1)
    )
    at = data[0]["ts"]
    assert name.startswith(
        f"prediction-log/model={version.model_id}/date={at:%Y-%m-%d}/hour={at:%H}/1-"
    )
    # And the pages' database row is written as before
    assert PredictionLog.objects.get().request_id == "req-colors"


def test_a_linked_version_logs_its_entity_keys_and_the_features_served(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given a regressor on f0, f1, f2 whose f1, f2 are served by customer id, logged at rate 1
    stats: FeatureGroup = group_with_values(
        "stats", "customer_id", [{"customer_id": 1, "f1": 0.5, "f2": -1.0}]
    )
    version = make_version("reg", name="risk")
    version.feature_service = FeatureServiceFactory.create(
        name="risk-features", features=list(stats.features.all())
    )
    version.save()
    client = writer(user)
    assert rate_patch(client, "risk", 1).status_code == 200

    # When a request sends the key and the request-time column only
    response = client.post(
        "/api/v1/models/risk/predict",
        {"instances": [{"customer_id": 1, "f0": 2.0}]},
        format="json",
        headers={"X-Request-ID": "req-risk"},
    )
    assert response.status_code == 200

    # Then the log has the key as text and the values the model received
    (row,) = logged("risk").to_pylist()
    assert row["key__customer_id"] == "1"
    assert (row["in__f0"], row["in__f1"], row["in__f2"]) == (2.0, 0.5, -1.0)
    assert row["out__prediction"] == pytest.approx(expected(2.0, 0.5, -1.0))
    assert row["request_id"] == "req-risk"


@pytest.mark.django_db(transaction=True)
def test_a_canary_and_a_shadow_are_logged_with_their_roles_under_the_callers_id(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given production on iris v1 with a 50 % canary v2 and a shadow v3, logged at rate 1
    versions_of(make_version, "iris", 3)
    client = writer(user)
    policy_put(client, {"version": 1, "canary": {"version": 2, "percent": 50}, "shadows": [3]})
    assert rate_patch(client, "m", 1.0).status_code == 200

    # When callers on both sides of the split predict
    answered = {}
    for i in range(12):
        response = client.post(
            "/api/v1/models/m/predict",
            {"instances": [IRIS_ROW]},
            format="json",
            headers={"X-Routing-Key": f"c{i}", "X-Request-ID": f"q{i:02d}"},
        )
        answered[f"q{i:02d}"] = int(response["X-Model-Version"])
    assert shadows.wait_idle(timeout=30)

    # Then each request has the answer's entry (primary v1 or canary v2) and the shadow's (v3)
    rows = logged("m").to_pylist()
    by_request: dict[str, set[tuple[str, int]]] = {}
    for row in rows:
        by_request.setdefault(row["request_id"], set()).add((row["role"], row["version"]))
    assert set(answered.values()) == {1, 2}
    for request_id, number in answered.items():
        role = "canary" if number == 2 else "primary"
        assert by_request[request_id] == {(role, number), ("shadow", 3)}
    assert all(row["out__prediction"] == "setosa" for row in rows)


def test_rate_zero_logs_nothing_and_null_returns_to_the_default(
    make_version: Callable[..., ModelVersion], user: Any, settings: Any
) -> None:
    # Given a server default of logging everything, and iris set to 0
    settings.MLPLATFORM_LOG_SAMPLE_RATE = 1.0
    make_version("iris")
    client = writer(user)
    assert rate_patch(client, "iris", 0).status_code == 200

    # When it predicts, then nothing is logged
    for _ in range(5):
        client.post("/api/v1/models/iris/predict", {"instances": [IRIS_ROW]}, format="json")
    assert logged("iris").num_rows == 0
    assert not PredictionLog.objects.exists()

    # When its rate is set back to null, the default applies again
    response = rate_patch(client, "iris", None)
    assert response.status_code == 200
    assert response.json()["log_sample_rate"] is None
    client.post("/api/v1/models/iris/predict", {"instances": [IRIS_ROW]}, format="json")
    assert logged("iris").num_rows == 1


@pytest.mark.django_db(transaction=True)
def test_a_tenth_is_logged_at_rate_one_tenth(
    make_version: Callable[..., ModelVersion], user: Any, settings: Any
) -> None:
    # Given iris at rate 0.1, written in the background as servers do
    settings.MLPLATFORM_LOG_BACKGROUND = True
    make_version("iris")
    client = writer(user)
    assert rate_patch(client, "iris", 0.1).status_code == 200
    requests = 800

    # When it answers 800 requests
    for i in range(requests):
        client.post(
            "/api/v1/models/iris/predict",
            {"instances": [IRIS_ROW]},
            format="json",
            headers={"X-Request-ID": f"r{i}"},
        )
    predictionlog.flush()

    # Then the requests logged are within the binomial's 1-in-a-million bounds of 10 %
    count = len(set(logged("iris").column("request_id").to_pylist()))
    low, high = binom.ppf([1e-6, 1 - 1e-6], requests, 0.1)
    assert low <= count <= high, count
    # And the buffered rows went into one Parquet file (one per version per write)
    model_id = ModelVersion.objects.get(model__name="iris").model_id
    now = timezone.now()
    names = predictionlog.partition_names(
        model_id, now - timedelta(hours=1), now + timedelta(hours=1)
    )
    assert 1 <= len(names) <= 2  # (two when the hour turned meanwhile)


@pytest.mark.parametrize("rate", [1.5, -0.1, "often", True, [0.5], {"rate": 0.5}], ids=repr)
def test_a_bad_sample_rate_is_400_and_changes_nothing(
    make_version: Callable[..., ModelVersion], user: Any, rate: Any
) -> None:
    make_version("iris")
    client = writer(user)
    assert rate_patch(client, "iris", 0.25).status_code == 200

    response = rate_patch(client, "iris", rate)

    assert response.status_code == 400
    assert "log_sample_rate" in str(response.json())
    assert client.get("/api/v1/models/iris/").json()["log_sample_rate"] == 0.25


def test_another_teams_member_cannot_set_the_rate(
    make_version: Callable[..., ModelVersion], django_user_model: Any
) -> None:
    make_version("iris")
    outsider = team_member(
        django_user_model, "mallory", TeamFactory.create(name="other"), apps=("registry",)
    )

    response = rate_patch(client_for(outsider), "iris", 1.0)

    assert response.status_code in (403, 404)
    assert ModelVersion.objects.get(model__name="iris").model.log_sample_rate is None


def _old_partition(model_id: int, at: Any) -> str:
    table = pa.table({"request_id": ["old"], "ts": pa.array([at], pa.timestamp("us", tz="UTC"))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    name = f"{predictionlog.folder(model_id, at)}/1-old.parquet"
    return default_storage.save(name, ContentFile(buffer.getvalue()))


def test_retention_deletes_partitions_and_rows_older_than_it_only(
    make_version: Callable[..., ModelVersion], user: Any, settings: Any
) -> None:
    # Given a retention of 30 days, the hourly beat entry, a prediction logged now, and a
    # partition, a database row and a rejection count from 31 days ago and from 29 days ago
    settings.MLPLATFORM_LOG_RETENTION_DAYS = 30
    entry = PeriodicTask.objects.get(task="serving.tasks.prediction_log_expire")
    assert entry.enabled
    assert entry.crontab is not None
    assert entry.crontab.hour == "*"
    version = make_version("iris")
    client = writer(user)
    rate_patch(client, "iris", 1.0)
    client.post("/api/v1/models/iris/predict", {"instances": [IRIS_ROW]}, format="json")
    now = timezone.now()
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    old_name = _old_partition(version.model_id, old)
    recent_name = _old_partition(version.model_id, recent)
    for moment in (old, recent):
        PredictionLog.objects.create(
            model=version.model,
            version=version,
            protocol="native",
            inputs={},
            outputs={},
            latency_ms=1.0,
            created_at=moment,
            request_id=f"db-{moment:%d}",
        )
        RejectionMinute.objects.create(model=version.model, field="f0", minute=moment, count=2)

    # When the beat task runs
    deleted = tasks.prediction_log_expire()

    # Then only what is older than 30 days is gone
    assert deleted == {"partitions": 1, "rows": 1, "rejections": 1}
    assert not default_storage.exists(old_name)
    assert default_storage.exists(recent_name)
    assert not Path(default_storage.path(old_name)).parent.exists()  # no empty folders left
    assert logged("iris").num_rows == 1
    assert set(PredictionLog.objects.values_list("request_id", flat=True)) == {
        f"db-{recent:%d}",
        PredictionLog.objects.exclude(request_id__startswith="db-").get().request_id,
    }
    assert list(RejectionMinute.objects.values_list("minute", flat=True)) == [recent]


def test_rejections_are_counted_per_version_and_field(
    make_version: Callable[..., ModelVersion], user: Any
) -> None:
    # Given iris v1
    version = make_version("iris")
    client = writer(user)
    start = timezone.now() - timedelta(minutes=1)

    # When requests are refused naming a field, through several protocols
    def post(path: str, body: Any) -> int:
        return client.post(path, body, format="json").status_code

    assert post("/api/v1/models/iris/predict", {"instances": [{**IRIS_ROW, "nope": 1}]}) == 400
    assert post("/api/v1/models/iris/predict", {"instances": [{**IRIS_ROW, "nope": 2}]}) == 400
    assert post("/api/v1/models/iris/predict", {"instances": [{**IRIS_ROW, "f0": "x"}]}) == 400
    missing = {"dataframe_records": [{"f0": 1.0, "f1": 1.0, "f2": 1.0}]}
    assert post("/mlflow/models/iris/invocations", missing) == 400
    assert post("/api/v1/models/iris/versions/7/predict", {"instances": [IRIS_ROW]}) == 404
    assert post("/api/v1/models/iris/predict", {"rows": []}) == 400
    # (and answers that name no model there is, or successful ones, are not counted)
    assert post("/api/v1/models/ghost/predict", {"instances": [IRIS_ROW]}) == 404
    assert post("/api/v1/models/iris/predict", {"instances": [IRIS_ROW]}) == 200

    # Then the counts are per version (None: none resolved) and field
    counts = selectors.rejections(version.model_id, start, timezone.now() + timedelta(minutes=1))
    assert counts == {1: {"nope": 2, "f0": 1, "f3": 1, "rows": 1}, None: {"version": 1}}
    # And nothing before the range is counted
    assert selectors.rejections(version.model_id, start - timedelta(hours=1), start) == {}


@pytest.mark.django_db(transaction=True)
def test_rejections_are_summed_in_memory_not_written_per_request(
    make_version: Callable[..., ModelVersion], user: Any, settings: Any
) -> None:
    # Given counts written in the background, as servers run
    settings.MLPLATFORM_LOG_BACKGROUND = True
    traffic.cache_clear()
    make_version("iris")
    client = writer(user)

    # When 20 requests are refused for the same field
    for i in range(20):
        client.post("/api/v1/models/iris/predict", {"instances": [{"f0": i}]}, format="json")

    # Then nothing was written per request; the process's flush adds one row for the minute
    assert not RejectionMinute.objects.exists()
    rejectionstats.flush()
    assert RejectionMinute.objects.count() <= 2  # (two when the minute turned meanwhile)
    assert RejectionMinute.objects.aggregate(total=Sum("count"))["total"] == 20
