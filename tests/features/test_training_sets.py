"""Point-in-time correctness of training sets against hand-computed expectations."""

import io
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.features.conftest import csv_file, ingest, make_group, parquet_frame

pytestmark = pytest.mark.django_db

# spend: explicit availability column, TTL 5 days.
SPEND = [
    # customer 1
    {"customer_id": 1, "event_timestamp": "2025-01-01T00:00:00Z",
     "available_at": "2025-01-01T00:00:00Z", "amount": 1.0},
    # happened on the 5th, known only on the 8th (late arrival)
    {"customer_id": 1, "event_timestamp": "2025-01-05T00:00:00Z",
     "available_at": "2025-01-08T00:00:00Z", "amount": 2.0},
    # same event time, known earlier (the 6th): a tie broken by available_at
    {"customer_id": 1, "event_timestamp": "2025-01-05T00:00:00Z",
     "available_at": "2025-01-06T00:00:00Z", "amount": 3.0},
    {"customer_id": 1, "event_timestamp": "2025-01-03T00:00:00Z",
     "available_at": "2025-01-03T00:00:00Z", "amount": 4.0},
    # customer 2
    {"customer_id": 2, "event_timestamp": "2025-01-10T00:00:00Z",
     "available_at": "2025-01-10T00:00:00Z", "amount": 5.0},
]  # fmt: skip
# profile: available one hour after the event, TTL 1 day.
PROFILE = [
    {"customer_id": 1, "event_timestamp": "2025-01-06T00:00:00Z", "score": 0.5},
    {"customer_id": 2, "event_timestamp": "2025-01-09T12:00:00Z", "score": 0.9},
    # known at 2025-01-10T00:30, after the query at 23:59:59 on the 9th
    {"customer_id": 2, "event_timestamp": "2025-01-09T23:30:00Z", "score": 0.1},
]
# (customer, t) -> (amount, score), worked out by hand from the rules of DESIGN §6.
CASES = {
    "q0": ((1, "2025-01-04T00:00:00Z"), (4.0, None)),  # r4 is the newest visible
    "q1": ((1, "2025-01-05T12:00:00Z"), (4.0, None)),  # r2/r3 happened but not yet available
    "q2": ((1, "2025-01-07T00:00:00Z"), (3.0, 0.5)),  # r3 available; profile at TTL boundary
    "q3": ((1, "2025-01-09T00:00:00Z"), (2.0, None)),  # tie: greatest available_at; profile expired
    "q4": ((1, "2025-01-10T00:00:00Z"), (2.0, None)),  # spend TTL boundary: exactly 5 days
    "q5": ((1, "2025-01-10T00:00:01Z"), (None, None)),  # one second past the TTL
    "q6": ((3, "2025-01-10T00:00:00Z"), (None, None)),  # no history at all
    "q7": ((1, "2025-01-07T00:00:00Z"), (3.0, 0.5)),  # duplicate of q2, kept
    "q8": ((2, "2025-01-09T23:59:59Z"), (None, 0.9)),  # 0.1 not yet available (lag rule)
}
ORDER = ["q3", "q0", "q8", "q2", "q5", "q6", "q1", "q7", "q4"]


@pytest.fixture
def two_groups(api_client: Any, customer: dict[str, Any]) -> None:
    make_group(
        api_client,
        name="spend",
        features=[{"name": "amount", "dtype": "float64"}],
        ttl_seconds=5 * 86400,
        availability={"column": "available_at"},
    )
    make_group(
        api_client,
        name="profile",
        features=[{"name": "score", "dtype": "float64"}],
        ttl_seconds=86400,
        availability={"lag_seconds": 3600},
    )
    assert ingest(api_client, "spend", SPEND).status_code == 201
    assert ingest(api_client, "profile", PROFILE).status_code == 201


def _same(actual: Any, expected: float | None) -> bool:
    if expected is None:
        return actual is None or (isinstance(actual, float) and math.isnan(actual))
    return actual == pytest.approx(expected)


def test_point_in_time_matrix_matches_hand_computed_values(api_client, two_groups):
    # Given entity rows in a scrambled order, with a duplicate and an unknown customer
    entities = [
        {"customer_id": CASES[q][0][0], "event_timestamp": CASES[q][0][1], "label": q}
        for q in ORDER
    ]
    # When a training set joins both groups at once
    response = api_client.post(
        "/api/v1/features/training-sets/",
        {"features": ["spend:amount", "profile:score"], "entities": entities, "format": "parquet"},
        format="json",
    )
    # Then every row has exactly the hand-computed values, in input order
    assert response.status_code == 200, response.content
    frame = parquet_frame(response.content)
    assert list(frame.columns) == ["customer_id", "event_timestamp", "label", "amount", "score"]
    assert list(frame["label"]) == ORDER
    for _, row in frame.iterrows():
        amount, score = CASES[row["label"]][1]
        assert _same(row["amount"], amount), (row["label"], row["amount"], amount)
        assert _same(row["score"], score), (row["label"], row["score"], score)
    assert str(frame["event_timestamp"].dt.tz) == "UTC"


def test_training_set_from_uploaded_entity_file_as_csv(api_client, two_groups):
    # Given the same rows as an uploaded CSV file
    entities = pd.DataFrame(
        [
            {"customer_id": CASES[q][0][0], "event_timestamp": CASES[q][0][1], "label": q}
            for q in ORDER
        ]
    )
    # When a feature list is given as a form field and CSV output is asked for
    response = api_client.post(
        "/api/v1/features/training-sets/",
        {
            "features": "spend:amount,profile:score",
            "entity_file": csv_file(entities.to_csv(index=False)),
            "format": "csv",
            "full_names": "true",
        },
        format="multipart",
    )
    # Then the CSV has full names and the same values
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    frame = pd.read_csv(io.BytesIO(response.content))
    assert list(frame.columns)[-2:] == ["spend__amount", "profile__score"]
    assert list(frame["label"]) == ORDER
    for _, row in frame.iterrows():
        amount, score = CASES[row["label"]][1]
        assert _same(row["spend__amount"], amount)
        assert _same(row["profile__score"], score)


def test_feature_service_and_name_collision_use_group_prefix(api_client, two_groups):
    # Given a third group that also has a feature called `amount`
    make_group(api_client, name="refunds", features=[{"name": "amount", "dtype": "int64"}])
    assert (
        ingest(
            api_client,
            "refunds",
            [{"customer_id": 1, "event_timestamp": "2025-01-01T00:00:00Z", "amount": 7}],
        ).status_code
        == 201
    )
    service = api_client.post(
        "/api/v1/features/services/",
        {"name": "churn-features", "features": ["spend:amount", "refunds:amount"]},
        format="json",
    )
    assert service.status_code == 201, service.content
    # When a training set is asked for through the service
    response = api_client.post(
        "/api/v1/features/training-sets/",
        {
            "feature_service": "churn-features",
            "entities": [{"customer_id": 1, "event_timestamp": "2026-01-01T00:00:00Z"}],
        },
        format="json",
    )
    # Then colliding names are prefixed by their group (refunds data is ingestion-time: future)
    frame = parquet_frame(response.content)
    assert list(frame.columns) == [
        "customer_id",
        "event_timestamp",
        "refunds__amount",
        "spend__amount",
    ]


def test_nightly_load_rule_hides_intraday_rows_until_the_next_load(api_client, customer):
    # Given a group loaded nightly at 02:00 and a row that happened at 14:00
    make_group(
        api_client,
        name="nightly",
        features=[{"name": "clicks", "dtype": "int64"}],
        availability={"daily_at": "02:00"},
    )
    ingest(
        api_client,
        "nightly",
        [{"customer_id": 1, "event_timestamp": "2025-03-01T14:00:00Z", "clicks": 12}],
    )
    # When asked just before and at the next 02:00
    response = api_client.post(
        "/api/v1/features/training-sets/",
        {
            "features": ["nightly:clicks"],
            "entities": [
                {"customer_id": 1, "event_timestamp": "2025-03-01T23:00:00Z"},
                {"customer_id": 1, "event_timestamp": "2025-03-02T01:59:59Z"},
                {"customer_id": 1, "event_timestamp": "2025-03-02T02:00:00Z"},
            ],
        },
        format="json",
    )
    # Then the value only appears once the nightly load has happened
    frame = parquet_frame(response.content)
    assert frame["clicks"].isna().tolist() == [True, True, False]
    assert frame["clicks"].iloc[2] == 12


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"features": ["spend:amount"], "entities": [{"event_timestamp": "2025-01-01"}]},
         "customer_id"),
        ({"features": ["spend:amount"], "entities": [{"customer_id": 1}]}, "event_timestamp"),
        ({"features": ["spend:amount"],
          "entities": [{"customer_id": 1, "event_timestamp": "yesterday"}]}, "event_timestamp"),
        ({"features": ["spend:nope"],
          "entities": [{"customer_id": 1, "event_timestamp": "2025-01-01"}]}, "spend:nope"),
        ({"features": ["spend:amount"], "feature_service": "x",
          "entities": [{"customer_id": 1, "event_timestamp": "2025-01-01"}]}, "exactly one"),
        ({"features": ["spend:amount"], "entities": []}, "entities"),
    ],
)  # fmt: skip
def test_bad_training_set_requests_are_400_naming_the_problem(
    api_client, two_groups, payload, needle
):
    response = api_client.post("/api/v1/features/training-sets/", payload, format="json")
    assert response.status_code == 400, response.content
    assert needle in response.json()["detail"]


LAGS = [0, 0, 1, 2, 7, 15]  # days from event to availability


def _reference(history: list[dict[str, Any]], key: int, t: pd.Timestamp, ttl: pd.Timedelta) -> Any:
    """DESIGN §6 read literally: the visible row with the greatest (event, available_at)."""
    visible = [
        r
        for r in history
        if r["customer_id"] == key
        and r["event_timestamp"] <= t
        and r["available_at"] <= t
        and r["event_timestamp"] >= t - ttl
    ]
    if not visible:
        return None
    best = max(visible, key=lambda r: (r["event_timestamp"], r["available_at"]))
    return best["value"]


def test_training_set_matches_a_literal_reading_of_the_rules_on_random_history(
    api_client, customer
):
    # Given a history on a coarse clock (many equal event and availability times), with late
    # arrivals of old events, and distinct (customer, event, available_at) per row
    rng = np.random.default_rng(11)
    day = pd.Timedelta(days=1)
    start = pd.Timestamp("2025-01-01T00:00:00Z")
    seen: set[tuple[int, int, int]] = set()
    history: list[dict[str, Any]] = []
    while len(history) < 240:
        key, event, lag = int(rng.integers(4)), int(rng.integers(30)), int(rng.choice(LAGS))
        if (key, event, lag) in seen:
            continue
        seen.add((key, event, lag))
        history.append(
            {
                "customer_id": key,
                "event_timestamp": start + event * day,
                "available_at": start + (event + lag) * day,
                "value": float(len(history)),
            }
        )
    make_group(
        api_client,
        name="random",
        features=[{"name": "value", "dtype": "float64"}],
        ttl_seconds=6 * 86400,
        availability={"column": "available_at"},
    )
    rows = [
        {
            **r,
            "event_timestamp": r["event_timestamp"].isoformat(),
            "available_at": r["available_at"].isoformat(),
        }
        for r in history
    ]
    assert ingest(api_client, "random", rows).status_code == 201
    # When asked at instants that fall on, between and after those times, for known and
    # unknown customers
    asked = [(int(rng.integers(5)), start + int(rng.integers(200)) * day / 4) for _ in range(300)]
    response = api_client.post(
        "/api/v1/features/training-sets/",
        {
            "features": ["random:value"],
            "entities": [{"customer_id": k, "event_timestamp": t.isoformat()} for k, t in asked],
        },
        format="json",
    )
    # Then every row has the value the rules give, in input order
    assert response.status_code == 200, response.content
    frame = parquet_frame(response.content)
    assert list(frame["customer_id"]) == [k for k, _ in asked]
    ttl = pd.Timedelta(days=6)
    for (key, t), actual in zip(asked, frame["value"], strict=True):
        assert _same(actual, _reference(history, key, t, ttl)), (key, t, actual)


@pytest.mark.parametrize("zone", ["Europe/Paris", None])
def test_typed_timestamps_in_a_parquet_entity_file_are_read_as_instants(
    api_client, two_groups, zone
):
    # Given the matrix's entity rows as Parquet with real timestamps: zoned in another zone, or
    # zone-less (read as UTC)
    moments = pd.to_datetime([CASES[q][0][1] for q in ORDER], utc=True)
    entities = pd.DataFrame(
        {
            "customer_id": [CASES[q][0][0] for q in ORDER],
            "event_timestamp": moments.tz_convert(zone) if zone else moments.tz_localize(None),
            "label": ORDER,
        }
    )
    upload = io.BytesIO(entities.to_parquet())
    upload.name = "entities.parquet"
    # When the training set is built from that file
    response = api_client.post(
        "/api/v1/features/training-sets/",
        {"features": "spend:amount,profile:score", "entity_file": upload},
        format="multipart",
    )
    # Then the values are the hand-computed ones and timestamps come back as the same instants
    assert response.status_code == 200, response.content
    frame = parquet_frame(response.content)
    assert list(frame["label"]) == ORDER
    assert list(frame["event_timestamp"]) == list(moments)
    for _, row in frame.iterrows():
        amount, score = CASES[row["label"]][1]
        assert _same(row["amount"], amount), (row["label"], row["amount"], amount)
        assert _same(row["score"], score), (row["label"], row["score"], score)


def test_a_cancelled_job_s_training_set_is_never_queried_or_written(two_groups, tmp_path):
    from features import online, training_sets
    from jobs.models import Job
    from jobs.services import JobStopped

    # Given a training-set job cancelled before its worker got to it
    job = Job.objects.create(kind=Job.Kind.TRAINING_SET, status=Job.Status.CANCELLED)
    output = tmp_path / "training-set.parquet"
    entities = [{"customer_id": 1, "event_timestamp": "2025-01-05T00:00:00Z"}]

    # When the worker builds it, then it stops before the first query and writes nothing
    with pytest.raises(JobStopped):
        training_sets.build(
            features=online.features_resolve(refs=["spend:amount"]),
            output=output,
            fmt="parquet",
            rows=entities,
            job_id=job.pk,
        )
    assert not output.exists()
