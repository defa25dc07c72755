"""Feast's feature server API (/get-online-features, /push, /write-to-online-store), driven by
Feast's own code: its request models build the bodies, its response model and its remote online
store parse the answers, its error mapping reads the errors, and a Feast FeatureStore with a
`remote` online store reads and pushes against a live server."""

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from feast import errors as feast_errors
from feast.feature_server import (
    GetOnlineFeaturesRequest,
    OnlineFeaturesResponse,
    PushFeaturesRequest,
    WriteToFeatureStoreRequest,
)
from feast.infra.online_stores.remote import RemoteOnlineStore

from features import tasks
from features.models import FeatureGroup, OfflinePartition, OnlineValue
from tests.conftest import api_key_for, client_for, team_member
from tests.factories import TeamFactory
from tests.features.conftest import ingest, make_group

pytestmark = pytest.mark.django_db

NOW = datetime.now(tz=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _feast_time(moment: datetime) -> str:
    """A timestamp as Feast's server writes it (whole seconds here)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


EVENT = (NOW - timedelta(days=1)).replace(microsecond=0)
OLD = (NOW - timedelta(days=30)).replace(microsecond=0)


@pytest.fixture
def activity(api_client: Any, customer: dict[str, Any]) -> None:
    """Customers 1 (fresh), 4 (fresh, country null) and 2 (older than the 7-day TTL), online."""
    make_group(
        api_client,
        name="activity",
        features=[{"name": "clicks", "dtype": "int64"}, {"name": "country", "dtype": "string"}],
        ttl_seconds=7 * 86400,
    )
    rows = [
        {"customer_id": 1, "event_timestamp": _iso(EVENT), "clicks": 9, "country": "DE"},
        {"customer_id": 4, "event_timestamp": _iso(EVENT), "clicks": 4, "country": None},
        {"customer_id": 2, "event_timestamp": _iso(OLD), "clicks": 1,
         "country": "IT"},
    ]  # fmt: skip
    assert ingest(api_client, "activity", rows).status_code == 201
    response = api_client.post("/api/v1/features/groups/activity/materialize")
    tasks.materialisation_run(response.json()["job"])


def _post(client: Any, path: str, model: Any) -> Any:
    return client.post(path, model.model_dump(), format="json")


def _online(client: Any, **request: Any) -> OnlineFeaturesResponse:
    response = _post(client, "/get-online-features", GetOnlineFeaturesRequest(**request))
    assert response.status_code == 200, response.content
    return OnlineFeaturesResponse.model_validate(response.json())


def _feast_error(response: Any) -> feast_errors.FeastError:
    """The exception Feast's HTTP clients raise for this answer."""
    error = feast_errors.FeastError.from_error_detail(response.json())
    assert error is not None, response.content
    return error


def test_online_features_answer_feasts_shape_with_every_status(api_client, activity):
    # When customers 1 (fresh), 4 (null country), 2 (too old) and 3 (unknown) are read
    body = _online(
        api_client,
        features=["activity:clicks", "activity:country"],
        entities={"customer_id": [1, 4, 2, 3]},
    )
    # Then the join key comes first, then one vector per feature over the entity rows
    assert body.metadata is not None
    assert body.metadata.feature_names == ["customer_id", "clicks", "country"]
    key, clicks, country = body.results
    assert key.values == [1, 4, 2, 3]
    assert key.statuses == ["PRESENT"] * 4
    assert key.event_timestamps == ["1970-01-01T00:00:00Z"] * 4
    assert clicks.values == [9, 4, None, None]
    assert clicks.statuses == ["PRESENT", "PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND"]
    assert country.values == ["DE", None, None, None]
    assert country.statuses == ["PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND"]
    assert clicks.event_timestamps == [
        _feast_time(EVENT),
        _feast_time(EVENT),
        _feast_time(OLD),
        "1970-01-01T00:00:00Z",
    ]


def test_feasts_remote_online_store_reads_the_answer(api_client, activity):
    # Given the answer to a read
    response = _post(
        api_client,
        "/get-online-features",
        GetOnlineFeaturesRequest(features=["activity:clicks"], entities={"customer_id": [1, 3]}),
    )
    # When Feast's remote online store turns it into its OnlineResponse
    online = RemoteOnlineStore()._build_online_response_from_json(response.json())
    # Then a Feast user sees the values by name
    assert online.to_dict() == {"customer_id": [1, 3], "clicks": [9, None]}


def test_full_feature_names_prefix_the_feature_view(api_client, activity):
    body = _online(
        api_client,
        features=["activity:clicks"],
        entities={"customer_id": [1]},
        full_feature_names=True,
    )
    assert body.metadata is not None
    assert body.metadata.feature_names == ["customer_id", "activity__clicks"]
    assert body.results[1].values == [9]


def test_a_feature_service_names_the_features(api_client, activity):
    # Given a feature service over one feature of the group
    created = api_client.post(
        "/api/v1/features/services/",
        {"name": "churn", "features": ["activity:country"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    # When it is read by name
    body = _online(api_client, feature_service="churn", entities={"customer_id": [1, 3]})
    # Then its features answer
    assert body.metadata is not None
    assert body.metadata.feature_names == ["customer_id", "country"]
    assert body.results[1].values == ["DE", None]
    assert body.results[1].statuses == ["PRESENT", "NOT_FOUND"]


@pytest.mark.parametrize(
    ("request_body", "error_class"),
    [
        ({"features": ["nowhere:clicks"]}, feast_errors.FeatureViewNotFoundException),
        ({"feature_service": "nowhere"}, feast_errors.FeatureServiceNotFoundException),
        ({"features": ["activity:nothing"]}, feast_errors.FeastObjectNotFoundException),
    ],
)
def test_unknown_names_are_feasts_not_found_errors(api_client, activity, request_body, error_class):
    request = GetOnlineFeaturesRequest(entities={"customer_id": [1]}, **request_body)
    response = _post(api_client, "/get-online-features", request)
    assert response.status_code == 404
    assert isinstance(_feast_error(response), error_class)


@pytest.mark.parametrize(
    "body",
    [
        {"features": ["activity:clicks"]},  # no entities
        {"features": ["activity:clicks"], "entities": {"customer_id": []}},
        {"features": ["activity:clicks"], "entities": {"customer_id": [1], "x": [1, 2]}},
        {"features": ["activity"], "entities": {"customer_id": [1]}},
        {"features": ["activity:clicks"], "entities": {"other_key": [1]}},  # no join key
        {"features": ["activity:clicks"], "entities": {"customer_id": [1]},
         "full_feature_names": "yes"},
        ["not", "an", "object"],
    ],
)  # fmt: skip
def test_malformed_reads_are_422_json(api_client, activity, body):
    response = api_client.post("/get-online-features", body, format="json")
    assert response.status_code == 422, response.content
    assert _feast_error(response).__class__.__name__ == "FeastError"


def test_a_malformed_json_body_is_a_422_feast_error(api_client, activity):
    response = api_client.post(
        "/get-online-features", data=b"{not json", content_type="application/json"
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/json"


def test_another_teams_group_is_refused(api_client, activity, django_user_model):
    # Given bob of another team, who may edit the catalog
    bob = team_member(
        django_user_model, "bob", TeamFactory.create(name="other"), apps=("features",)
    )
    # When bob reads the data team's group, or pushes to it
    client = client_for(bob, scheme="Bearer")
    read = _post(
        client,
        "/get-online-features",
        GetOnlineFeaturesRequest(features=["activity:clicks"], entities={"customer_id": [1]}),
    )
    push = _post(
        client,
        "/push",
        PushFeaturesRequest(
            push_source_name="activity",
            df={"customer_id": [1], "event_timestamp": [_iso(NOW)], "clicks": [0],
                "country": ["FR"]},
        ),
    )  # fmt: skip
    # Then both are refused as Feast's permission error, and nothing changed
    assert read.status_code == 403
    assert isinstance(_feast_error(read), feast_errors.FeastPermissionError)
    assert push.status_code == 403
    assert isinstance(_feast_error(push), feast_errors.FeastPermissionError)
    assert _online(api_client, features=["activity:clicks"], entities={"customer_id": [1]}).results[
        1
    ].values == [9]


def test_no_token_is_401(anon_client, activity):
    response = anon_client.post(
        "/get-online-features",
        {"features": ["activity:clicks"], "entities": {"customer_id": [1]}},
        format="json",
    )
    assert response.status_code == 401
    assert isinstance(_feast_error(response), feast_errors.FeastPermissionError)


# --- pushes -----------------------------------------------------------------------------------


def _push(client: Any, **request: Any) -> Any:
    return _post(client, "/push", PushFeaturesRequest(**request))


def test_push_to_online_is_read_back(api_client, activity):
    # When a newer value for customer 1 and a new customer 7 are pushed (Feast's default `to`)
    pushed = (NOW - timedelta(minutes=5)).replace(microsecond=0)
    event = _iso(pushed)
    response = _push(
        api_client,
        push_source_name="activity",
        df={"customer_id": [1, 7], "event_timestamp": [event, event], "clicks": [10, 70],
            "country": ["FR", None]},
    )  # fmt: skip
    # Then both are read back at once, and nothing went to the offline store
    assert response.status_code == 200, response.content
    body = _online(api_client, features=["activity:clicks"], entities={"customer_id": [1, 7]})
    assert body.results[1].values == [10, 70]
    assert body.results[1].event_timestamps[1] == _feast_time(pushed)
    assert OfflinePartition.objects.filter(group__name="activity").count() == 1


def test_an_older_push_does_not_replace_a_newer_online_value(api_client, activity):
    response = _push(
        api_client,
        push_source_name="activity",
        df={"customer_id": [1], "event_timestamp": [_iso(EVENT - timedelta(days=1))],
            "clicks": [0], "country": ["XX"]},
    )  # fmt: skip
    assert response.status_code == 200, response.content
    body = _online(api_client, features=["activity:clicks"], entities={"customer_id": [1]})
    assert body.results[1].values == [9]


def test_push_to_offline_is_seen_by_training_sets_from_push_time(api_client, activity):
    # When a row for customer 8 is pushed to the offline store only
    before = datetime.now(tz=UTC)
    response = _push(
        api_client,
        push_source_name="activity",
        to="offline",
        df={"customer_id": [8], "event_timestamp": [_iso(NOW - timedelta(hours=1))],
            "clicks": [80], "country": ["NL"]},
    )  # fmt: skip
    after = datetime.now(tz=UTC)
    assert response.status_code == 200, response.content
    # Then it is not online (until a materialisation), and is a partition available from push time
    body = _online(api_client, features=["activity:clicks"], entities={"customer_id": [8]})
    assert body.results[1].statuses == ["NOT_FOUND"]
    partition = OfflinePartition.objects.filter(group__name="activity").order_by("id").last()
    assert partition is not None
    assert partition.max_available_at is not None
    assert before - timedelta(seconds=1) <= partition.max_available_at <= after
    # And a training set sees it after the push time, not before
    entities = [
        {"customer_id": 8, "event_timestamp": _iso(after + timedelta(seconds=1))},
        {"customer_id": 8, "event_timestamp": _iso(before - timedelta(seconds=5))},
    ]
    training = api_client.post(
        "/api/v1/features/training-sets/",
        {"features": ["activity:clicks"], "entities": entities, "format": "csv"},
        format="json",
    )
    assert training.status_code == 200, training.content
    frame = pd.read_csv(io.BytesIO(training.content))
    assert list(frame["clicks"].fillna(-1)) == [80, -1]


def test_push_online_and_offline_writes_both(api_client, activity):
    response = _push(
        api_client,
        push_source_name="activity",
        to="online_and_offline",
        df={"customer_id": [9], "event_timestamp": [_iso(NOW)], "clicks": [90],
            "country": ["BE"]},
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert OfflinePartition.objects.filter(group__name="activity").count() == 2
    body = _online(api_client, features=["activity:clicks"], entities={"customer_id": [9]})
    assert body.results[1].values == [90]


def test_a_group_tagged_with_a_push_source_takes_its_pushes(api_client, activity):
    # Given the group declares the push source Feast's feature view reads from
    response = api_client.patch(
        "/api/v1/features/groups/activity/",
        {"tags": {"push_source": "activity_push"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    # When rows are pushed to that source
    response = _push(
        api_client,
        push_source_name="activity_push",
        df={"customer_id": [5], "event_timestamp": [_iso(NOW)], "clicks": [50],
            "country": ["PL"]},
    )  # fmt: skip
    # Then the group holds them
    assert response.status_code == 200, response.content
    body = _online(api_client, features=["activity:clicks"], entities={"customer_id": [5]})
    assert body.results[1].values == [50]


GOOD = {"customer_id": [6], "event_timestamp": [_iso(NOW)], "clicks": [60], "country": ["SE"]}


@pytest.mark.parametrize(
    ("request_body", "status", "error_class"),
    [
        ({"push_source_name": "nowhere", "df": GOOD}, 422, "PushSourceNotFoundException"),
        ({"push_source_name": "activity", "df": GOOD, "to": "somewhere"}, 422, "FeastError"),
        ({"push_source_name": "activity", "df": {**GOOD, "extra": [1]}}, 422, "FeastError"),
        ({"push_source_name": "activity", "df": {"customer_id": [6], "clicks": [60]}}, 422,
         "FeastError"),
        ({"push_source_name": "activity", "df": {**GOOD, "clicks": ["many"]}}, 422, "FeastError"),
        ({"push_source_name": "activity", "df": {**GOOD, "event_timestamp": ["soon"]}}, 422,
         "FeastError"),
        ({"push_source_name": "activity", "df": {**GOOD, "clicks": [1, 2]}}, 422,
         "DataFrameSerializationError"),
        ({"push_source_name": "activity", "df": []}, 422, "DataFrameSerializationError"),
        ({"df": GOOD}, 422, "FeastError"),
    ],
)  # fmt: skip
def test_bad_pushes_are_4xx_json_and_write_nothing(
    api_client, activity, request_body, status, error_class
):
    response = api_client.post("/push", request_body, format="json")
    assert response.status_code == status, response.content
    assert _feast_error(response).__class__.__name__ == error_class
    assert not OnlineValue.objects.filter(entity_key='["6"]').exists()
    assert OfflinePartition.objects.filter(group__name="activity").count() == 1


def test_too_many_rows_are_413(api_client, activity, settings):
    settings.MLPLATFORM_INLINE_INGEST_CELLS = 10
    df = {
        "customer_id": list(range(100, 103)),
        "event_timestamp": [_iso(NOW)] * 3,
        "clicks": [1, 2, 3],
        "country": ["A", "B", "C"],
    }
    response = _push(api_client, push_source_name="activity", df=df)
    assert response.status_code == 413
    assert "at most 10 cells" in _feast_error(response).__str__()
    assert not OnlineValue.objects.filter(entity_key='["100"]').exists()


def test_write_to_online_store_takes_feasts_naive_utc_rows(api_client, activity):
    # Given rows as Feast's remote online store sends them: naive UTC times and a `created`
    naive = (NOW - timedelta(minutes=1)).astimezone(UTC).replace(tzinfo=None, microsecond=0)
    request = WriteToFeatureStoreRequest(
        feature_view_name="activity",
        df={"customer_id": [1], "clicks": [11], "country": ["FR"],
            "event_timestamp": [naive.isoformat()], "created": [None]},
    )  # fmt: skip
    response = _post(api_client, "/write-to-online-store", request)
    assert response.status_code == 200, response.content
    body = _online(api_client, features=["activity:clicks"], entities={"customer_id": [1]})
    assert body.results[1].values == [11]
    assert body.results[1].event_timestamps == [_feast_time(naive.replace(tzinfo=UTC))]
    unknown = _post(
        api_client,
        "/write-to-online-store",
        WriteToFeatureStoreRequest(feature_view_name="nowhere", df={"customer_id": [1]}),
    )
    assert unknown.status_code == 404
    assert isinstance(_feast_error(unknown), feast_errors.FeatureViewNotFoundException)


# --- Feast's FeatureStore against a live server -----------------------------------------------


@pytest.fixture
def feast_store(tmp_path, live_server, user) -> Any:
    """A Feast repository whose online store is this platform, with the platform token of
    `user` in its auth section, and the feature view and service mirrored in its registry."""
    from feast import (
        Entity,
        FeatureService,
        FeatureStore,
        FeatureView,
        Field,
        FileSource,
        PushSource,
        ValueType,
    )
    from feast.types import Int64, String

    (tmp_path / "feature_store.yaml").write_text(
        "project: platform\n"
        "provider: local\n"
        f"registry: {tmp_path / 'registry.db'}\n"
        "online_store:\n"
        "  type: remote\n"
        f"  path: {live_server.url}\n"
        "auth:\n"
        "  type: kubernetes\n"
        f"  user_token: {api_key_for(user)}\n"
        "entity_key_serialization_version: 3\n"
    )
    store = FeatureStore(repo_path=str(tmp_path))
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    source = FileSource(
        name="activity_file",
        path=str(tmp_path / "activity.parquet"),
        timestamp_field="event_timestamp",
    )
    view = FeatureView(
        name="activity",
        entities=[customer],
        schema=[
            Field(name="customer_id", dtype=Int64),
            Field(name="clicks", dtype=Int64),
            Field(name="country", dtype=String),
        ],
        source=PushSource(name="activity", batch_source=source),
        ttl=timedelta(days=7),
    )
    store.apply([customer, view, FeatureService(name="churn", features=[view[["country"]]])])
    return store


@pytest.mark.django_db(transaction=True)
def test_feasts_feature_store_reads_and_pushes(api_client, activity, feast_store):
    from feast.data_source import PushMode

    # Given the platform's feature service of the same name
    created = api_client.post(
        "/api/v1/features/services/",
        {"name": "churn", "features": ["activity:country"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    # When a Feast user reads by feature references and by feature service
    by_refs = feast_store.get_online_features(
        features=["activity:clicks", "activity:country"],
        entity_rows=[{"customer_id": 1}, {"customer_id": 3}],
    ).to_dict()
    by_service = feast_store.get_online_features(
        features=feast_store.get_feature_service("churn"), entity_rows=[{"customer_id": 1}]
    ).to_dict()
    # Then the platform's values answer
    assert by_refs == {"customer_id": [1, 3], "clicks": [9, None], "country": ["DE", None]}
    assert by_service == {"customer_id": [1], "country": ["DE"]}
    # When the user pushes a newer row to the online store through Feast
    frame = pd.DataFrame(
        {
            "customer_id": [1],
            "event_timestamp": [NOW - timedelta(minutes=1)],
            "clicks": [12],
            "country": ["FR"],
        }
    )
    feast_store.push("activity", frame, to=PushMode.ONLINE)
    # Then it is read back, by Feast and by the platform's own online API
    assert feast_store.get_online_features(
        features=["activity:clicks"], entity_rows=[{"customer_id": 1}]
    ).to_dict() == {"customer_id": [1], "clicks": [12]}
    own = api_client.post(
        "/api/v1/features/online/",
        {"features": ["activity:country"], "entities": {"customer_id": [1]}},
        format="json",
    )
    assert own.json()["rows"] == [{"customer_id": 1, "country": "FR"}]
    assert FeatureGroup.objects.get(name="activity").partitions.count() == 1
