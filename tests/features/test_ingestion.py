"""Ingestion: whole-file validation, availability rules, statistics, command and admin."""

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from tests.features.conftest import csv_file, ingest, make_group

pytestmark = pytest.mark.django_db

GOOD = [
    {"customer_id": 1, "event_timestamp": "2025-01-01T00:00:00Z", "spend": 10.5, "orders": 2},
    {"customer_id": 2, "event_timestamp": "2025-01-02T00:00:00+01:00", "spend": "", "orders": 3},
    {"customer_id": 1, "event_timestamp": "2025-01-03T00:00:00Z", "spend": 30.0, "orders": 4},
]


@pytest.fixture
def stats_group(api_client: Any, customer: dict[str, Any]) -> dict[str, Any]:
    return make_group(
        api_client,
        name="customer_stats",
        features=[
            {"name": "spend", "dtype": "float64", "description": "30-day spend"},
            {"name": "orders", "dtype": "int64"},
        ],
        ttl_seconds=86400 * 30,
        availability={"lag_seconds": 93600},
        tasks=["classification"],
    )


def _offline_files() -> list[Path]:
    """The group's stored partitions, plus any stray file a failed upload might have left."""
    from features.models import FeatureGroup

    group = FeatureGroup.objects.get(name="customer_stats")
    root = Path(settings.MEDIA_ROOT) / "features" / "offline" / group.name
    known = [Path(default_storage.path(p.path)) for p in group.partitions.order_by("id")]
    created = group.created_at.timestamp()
    recent = {p for p in root.glob("*.parquet") if p.stat().st_mtime >= created}
    return known + sorted(recent - set(known))


def _group(api_client: Any, name: str = "customer_stats") -> dict[str, Any]:
    return api_client.get(f"/api/v1/features/groups/{name}/").json()


def test_ingest_csv_stores_a_partition_and_statistics(api_client, stats_group):
    # When a good file is ingested
    response = ingest(api_client, "customer_stats", GOOD)
    # Then all rows are stored and the statistics are computed
    assert response.status_code == 201, response.content
    assert response.json() == {"rows": 3}
    group = _group(api_client)
    assert group["summary"]["rows"] == 3
    assert group["key_dtypes"] == {"customer_id": "int64"}
    spend = next(f for f in group["features"] if f["name"] == "spend")["statistics"]
    assert spend["count"] == 3
    assert spend["nulls"] == 1
    assert spend["min"] == 10.5
    assert spend["max"] == 30.0
    assert spend["mean"] == pytest.approx(20.25)
    assert sum(spend["histogram"]["counts"]) == 2
    # And available_at follows the lag rule (26 h after the event, in UTC)
    stored = pd.read_parquet(_offline_files()[0])
    assert (
        str(stored["available_at"].iloc[1]) == "2025-01-03T01:00:00"
        or str(stored["available_at"].iloc[1]) == "2025-01-03 01:00:00"
    )


def test_appends_add_partitions_and_never_rewrite_history(api_client, stats_group):
    ingest(api_client, "customer_stats", GOOD)
    first = _offline_files()
    before = first[0].read_bytes()
    # When a second file is appended
    response = ingest(api_client, "customer_stats", GOOD[:1])
    # Then a new partition exists and the first one is byte-for-byte unchanged
    assert response.status_code == 201
    files = _offline_files()
    assert len(files) == 2
    assert first[0].read_bytes() == before
    assert _group(api_client)["summary"]["rows"] == 4


def test_parquet_upload_is_accepted(api_client, stats_group):
    frame = pd.DataFrame(GOOD[:1] + GOOD[2:])
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["spend"] = frame["spend"].astype(float)
    stream = io.BytesIO()
    frame.to_parquet(stream)
    stream.seek(0)
    stream.name = "x.parquet"
    response = api_client.post(
        "/api/v1/features/groups/customer_stats/ingest", {"file": stream}, format="multipart"
    )
    assert response.status_code == 201, response.content
    assert response.json() == {"rows": 2}


BAD_FILES = {
    "missing key": (
        "event_timestamp,spend,orders\n2025-01-01T00:00:00Z,1.0,1\n",
        "customer_id",
    ),
    "wrong dtype": (
        "customer_id,event_timestamp,spend,orders\n"
        "1,2025-01-01T00:00:00Z,1.0,1\n2,2025-01-01T00:00:00Z,lots,1\n",
        "spend",
    ),
    "fractional int": (
        "customer_id,event_timestamp,spend,orders\n1,2025-01-01T00:00:00Z,1.0,1.5\n",
        "orders",
    ),
    "unparseable timestamp": (
        "customer_id,event_timestamp,spend,orders\n1,2025-01-01T00:00:00Z,1.0,1\n"
        "1,last tuesday,1.0,1\n",
        "event_timestamp",
    ),
    "naive timestamp": (
        "customer_id,event_timestamp,spend,orders\n1,2025-01-01 00:00:00,1.0,1\n",
        "time zone",
    ),
    "extra column": (
        "customer_id,event_timestamp,spend,orders,secret\n1,2025-01-01T00:00:00Z,1.0,1,x\n",
        "secret",
    ),
    "empty file": ("", "empty"),
    "header only": ("customer_id,event_timestamp,spend,orders\n", "no rows"),
    "empty key": (
        "customer_id,event_timestamp,spend,orders\n,2025-01-01T00:00:00Z,1.0,1\n",
        "customer_id",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_rejected_whole_and_store_unchanged(api_client, stats_group, case):
    # Given a store with one good partition
    ingest(api_client, "customer_stats", GOOD)
    files_before = {p: p.read_bytes() for p in _offline_files()}
    stats_before = _group(api_client)["features"]
    content, needle = BAD_FILES[case]
    # When a bad file is uploaded
    response = ingest(api_client, "customer_stats", content)
    # Then it is a 400 naming the problem, and nothing changed
    assert response.status_code == 400, response.content
    assert needle in response.json()["detail"]
    assert {p: p.read_bytes() for p in _offline_files()} == files_before
    group = _group(api_client)
    assert group["summary"]["rows"] == 3
    assert group["features"] == stats_before


def test_naive_timestamps_read_as_utc_when_the_group_says_so(api_client, customer):
    make_group(
        api_client,
        name="naive",
        features=[{"name": "x", "dtype": "bool"}],
        naive_timestamps_utc=True,
    )
    response = ingest(
        api_client,
        "naive",
        "customer_id,event_timestamp,x\nA-1,2025-01-01 10:00:00,true\nB-2,2025-01-01,no\n",
    )
    assert response.status_code == 201, response.content
    assert _group(api_client, "naive")["key_dtypes"] == {"customer_id": "string"}


def test_explicit_available_at_before_event_is_rejected(api_client, customer):
    make_group(
        api_client,
        name="explicit",
        features=[{"name": "x", "dtype": "float64"}],
        availability={"column": "available_at"},
    )
    response = ingest(
        api_client,
        "explicit",
        "customer_id,event_timestamp,available_at,x\n"
        "1,2025-01-02T00:00:00Z,2025-01-01T00:00:00Z,1\n",
    )
    assert response.status_code == 400
    assert "available_at" in response.json()["detail"]


def test_large_file_becomes_an_ingestion_job(api_client, stats_group, settings):
    # Given an inline limit smaller than the file
    settings.MLPLATFORM_INLINE_INGEST_BYTES = 10
    # When it is uploaded
    response = ingest(api_client, "customer_stats", GOOD)
    # Then a queued ingestion job is returned (run by a worker; see test_jobs_e2e)
    assert response.status_code == 202
    job = api_client.get(f"/api/v1/jobs/{response.json()['job']}/").json()
    assert job["kind"] == "ingestion"
    assert job["status"] == "queued"


def test_management_command_ingests_and_rejects(stats_group, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(pd.DataFrame(GOOD).to_csv(index=False))
    out = io.StringIO()
    call_command("ingest_features", "customer_stats", str(good), stdout=out)
    assert "Ingested 3 rows" in out.getvalue()
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,event_timestamp\n1,2025-01-01T00:00:00Z\n")
    with pytest.raises(CommandError, match="spend"):
        call_command("ingest_features", "customer_stats", str(bad))


def test_admin_ingest_form(admin_client, stats_group):
    from features.models import FeatureGroup

    group = FeatureGroup.objects.get(name="customer_stats")
    url = f"/admin/features/featuregroup/{group.pk}/ingest/"
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"file": csv_file(GOOD)})
    assert response.status_code == 302
    assert group.partitions.count() == 1
    response = admin_client.post(url, {"file": csv_file("customer_id\n1\n")})
    assert response.status_code == 200
    assert b"missing column" in response.content
    assert group.partitions.count() == 1


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"name": "g", "features": [{"name": "x", "dtype": "complex"}]}, "dtype"),
        ({"name": "g", "features": [{"name": "customer_id"}]}, "customer_id"),
        ({"name": "g", "features": [], "availability": {"daily_at": "25:00"}}, "daily_at"),
        ({"name": "g", "features": [], "availability": {"when": 1}}, "availability"),
        ({"name": "g", "features": [], "schedule": "0 3 * * *"}, "schedule"),
        ({"name": "g", "features": [], "entity": "nobody"}, "nobody"),
        ({"name": "g", "features": [], "ttl_seconds": 0}, "ttl_seconds"),
    ],
)
def test_bad_group_definitions_are_400(api_client, customer, payload, needle):
    response = api_client.post(
        "/api/v1/features/groups/", {"entity": "customer", **payload}, format="json"
    )
    assert response.status_code in (400, 404), response.content
    assert needle in response.json()["detail"]
