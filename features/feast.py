"""Feast's feature server API on the platform's feature store: the names and the shapes.

Feast's names map onto the platform's: a feature view is a feature group (`view:feature` is
`group:feature`), a feature service is a feature service, an entity's join keys are the
entity's join keys. A push source is the group whose tag `push_source` names it, else the
group of that name. Responses and errors are shaped as Feast's own server answers them
(`feast/feature_server.py`, `feast/feature_server_utils.py`, `feast/errors.py`), so Feast's
clients read them unchanged. No HTTP framework here: the views are in `features/api/feast.py`.
"""

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import pandas as pd

from features import online
from features.ingestion import AVAILABLE, EVENT
from features.models import Feature, FeatureGroup, FeatureService
from mlplatform.errors import ApplicationError

# Feast's FieldStatus names for the platform's online statuses; a stored null is NULL_VALUE.
STATUSES = {
    online.PRESENT: "PRESENT",
    online.MISSING: "NOT_FOUND",
    online.EXPIRED: "OUTSIDE_MAX_AGE",
}
# What Feast's server answers for a timestamp it has not got (join keys, missing rows).
EPOCH = "1970-01-01T00:00:00Z"
# Feast's push modes -> (online store, offline store); Feast's default is "online".
PUSH_MODES = {
    "online": (True, False),
    "offline": (False, True),
    "online_and_offline": (True, True),
}
# The created-timestamp column Feast's clients add to writes; the platform has available_at.
CREATED = "created"

_CLASS_BY_STATUS: dict[int, str] = {
    HTTPStatus.UNAUTHORIZED: "FeastPermissionError",
    HTTPStatus.FORBIDDEN: "FeastPermissionError",
    HTTPStatus.NOT_FOUND: "FeastObjectNotFoundException",
}


class FeastError(ApplicationError):
    """An error answered under one of Feast's error class names (`feast.errors`)."""

    def __init__(
        self, message: str, *, feast_class: str, status_code: int = HTTPStatus.UNPROCESSABLE_ENTITY
    ):
        super().__init__(message, status_code=status_code)
        self.feast_class = feast_class


def error_body(*, status_code: int, message: str, feast_class: str | None = None) -> str:
    """Feast's error answer: a JSON string holding `module`, `class` and `message`, which
    Feast's HTTP clients turn back into that exception (`FeastError.from_error_detail`)."""
    name = feast_class or _CLASS_BY_STATUS.get(status_code, "FeastError")
    return json.dumps({"module": "feast.errors", "class": name, "message": message})


# --- requests ---------------------------------------------------------------------------------


@dataclass
class OnlineRequest:
    entities: dict[str, list[Any]]
    features: list[str]
    feature_service: str | None
    full_feature_names: bool
    view_metadata: bool


def _invalid(message: str) -> FeastError:
    return FeastError(message, feast_class="FeastError")


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise _invalid(f"{name}: a boolean is required.")
    return value


def online_request(body: Any) -> OnlineRequest:
    """Feast's GetOnlineFeaturesRequest, checked as its model checks it.

    Raises:
        FeastError: a malformed body (422).
    """
    if not isinstance(body, dict):
        raise _invalid("The body must be a JSON object.")
    entities = body.get("entities")
    if not isinstance(entities, dict) or not all(
        isinstance(k, str) and isinstance(v, list) for k, v in entities.items()
    ):
        raise _invalid("entities: an object of join key -> list of values is required.")
    lengths = {len(v) for v in entities.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise _invalid("entities: every key needs a non-empty list of the same length.")
    features = body.get("features") or []
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise _invalid("features: a list of 'feature_view:feature' references is required.")
    service = body.get("feature_service")
    if service is not None and not isinstance(service, str):
        raise _invalid("feature_service: a name is required.")
    if not service and not features:
        raise _invalid("Give `features` or a `feature_service`.")
    return OnlineRequest(
        entities=entities,
        features=features,
        feature_service=service or None,
        full_feature_names=_flag(body, "full_feature_names"),
        view_metadata=_flag(body, "include_feature_view_version_metadata"),
    )


def features_resolve(request: OnlineRequest) -> list[Feature]:
    """The features a request names, as Feast resolves them: a feature service wins over a
    feature list. Unknown names are Feast's not-found errors (404).

    Raises:
        FeastError: an unknown feature view, feature or feature service, or a malformed ref.
    """
    if request.feature_service is not None:
        if not FeatureService.objects.filter(name=request.feature_service).exists():
            raise FeastError(
                f"Feature service {request.feature_service} does not exist",
                feast_class="FeatureServiceNotFoundException",
                status_code=HTTPStatus.NOT_FOUND,
            )
        return online.features_resolve_cached(feature_service=request.feature_service)
    try:
        return online.features_resolve_cached(refs=request.features)
    except ApplicationError:
        _diagnose(request.features)
        raise


def _diagnose(refs: Sequence[str]) -> None:
    """Raise Feast's error for the first reference the platform could not resolve."""
    for ref in refs:
        if ref.count(":") != 1:
            raise _invalid(f"features: {ref!r} is not 'feature_view:feature'.")
        view, name = ref.split(":")
        if not FeatureGroup.objects.filter(name=view).exists():
            raise FeastError(
                f"Feature view {view} does not exist",
                feast_class="FeatureViewNotFoundException",
                status_code=HTTPStatus.NOT_FOUND,
            )
        if not Feature.objects.filter(group__name=view, name=name).exists():
            raise FeastError(
                f"Feature {name} does not exist in feature view {view}",
                feast_class="FeastObjectNotFoundException",
                status_code=HTTPStatus.NOT_FOUND,
            )


# --- online reads -----------------------------------------------------------------------------


def _timestamp(moment: datetime | None) -> str:
    """RFC 3339 in UTC with Feast's adaptive precision (none, ms or µs)."""
    if moment is None:
        return EPOCH
    moment = moment.astimezone(UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    micros = moment.microsecond
    if micros == 0:
        return base + "Z"
    if micros % 1000 == 0:
        return f"{base}.{micros // 1000:03d}Z"
    return f"{base}.{micros:06d}Z"


def _value(feature: Feature, value: Any) -> Any:
    """A stored value as Feast's JSON carries it: datetimes as Unix seconds (UnixTimestamp),
    non-finite floats as protobuf JSON's strings."""
    if value is None:
        return None
    if feature.dtype == Feature.Dtype.DATETIME and isinstance(value, str):
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _names(features: Sequence[Feature], *, full: bool) -> list[str]:
    names = [f"{f.group.name}__{f.name}" if full else f.name for f in features]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        hint = (
            "ensure that the feature views or their own features have different names"
            if full
            else "use the full feature name by setting 'full_feature_names=True', or ensure "
            "that the features in question have different names"
        )
        raise FeastError(
            f"Duplicate features named {', '.join(repeated)} found.\nTo resolve this collision, "
            f"{hint}.",
            feast_class="FeatureNameCollisionError",
        )
    return names


def online_response(
    *, request: OnlineRequest, features: Sequence[Feature], now: datetime | None = None
) -> dict[str, Any]:
    """Feast's GetOnlineFeaturesResponse as its server writes it to JSON: the join keys first
    (values as sent, PRESENT, epoch timestamps), then one vector per feature over the entity
    rows, with its statuses and the stored event timestamps.

    Raises:
        ApplicationError: an entity row lacks a join key a feature's group needs.
        FeastError: two features would answer under one name.
    """
    names = _names(features, full=request.full_feature_names)
    count = len(next(iter(request.entities.values())))
    rows = [{k: v[i] for k, v in request.entities.items()} for i in range(count)]
    by_group: dict[int, list[Feature]] = {}
    for feature in features:
        by_group.setdefault(feature.group_id, []).append(feature)
    vectors: dict[int, dict[str, Any]] = {}
    for group_features in by_group.values():
        # One read per group: two groups may hold features of the same name.
        values, statuses, events = online.online_read_timed(
            features=group_features, entity_rows=rows, now=now
        )
        for feature in group_features:
            name = feature.name
            vector_statuses = []
            for index in range(count):
                status = STATUSES[statuses[index][name]]
                if status == "PRESENT" and values[index][name] is None:
                    status = "NULL_VALUE"
                vector_statuses.append(status)
            vectors[feature.pk] = {
                "values": [_value(feature, values[i][name]) for i in range(count)],
                "statuses": vector_statuses,
                "event_timestamps": [_timestamp(events[i][name]) for i in range(count)],
            }
    join_keys = {k for f in features for k in f.group.entity.join_keys}
    keys = [k for k in request.entities if k in join_keys]
    metadata: dict[str, Any] = {"feature_names": [*keys, *names]}
    if request.view_metadata:
        metadata["feature_view_metadata"] = [
            {"name": name} for name in dict.fromkeys(f.group.name for f in features)
        ]
    return {
        "metadata": metadata,
        "results": [
            *(
                {
                    "values": list(request.entities[k]),
                    "statuses": ["PRESENT"] * count,
                    "event_timestamps": [EPOCH] * count,
                }
                for k in keys
            ),
            *(vectors[f.pk] for f in features),
        ],
    }


# --- pushes -----------------------------------------------------------------------------------


def push_groups(name: Any) -> list[FeatureGroup]:
    """The groups a push source feeds: those tagged `push_source: <name>`, else the group named
    so.

    Raises:
        FeastError: no group takes this push source (422, as Feast answers).
    """
    if not isinstance(name, str) or not name:
        raise _invalid("push_source_name: a name is required.")
    groups = list(FeatureGroup.objects.filter(tags__push_source=name).select_related("entity"))
    if not groups:
        groups = list(FeatureGroup.objects.filter(name=name).select_related("entity"))
    if not groups:
        raise FeastError(
            f"Unable to find push source '{name}'.", feast_class="PushSourceNotFoundException"
        )
    return groups


def view_group(name: Any) -> FeatureGroup:
    """The group a feature view name names (write-to-online-store).

    Raises:
        FeastError: no such group (404, as Feast answers).
    """
    if not isinstance(name, str) or not name:
        raise _invalid("feature_view_name: a name is required.")
    group = FeatureGroup.objects.filter(name=name).select_related("entity").first()
    if group is None:
        raise FeastError(
            f"Feature view {name} does not exist",
            feast_class="FeatureViewNotFoundException",
            status_code=HTTPStatus.NOT_FOUND,
        )
    return group


def push_mode(value: Any) -> tuple[bool, bool]:
    """(online, offline) for Feast's `to`.

    Raises:
        FeastError: not one of Feast's push modes (422).
    """
    if value not in PUSH_MODES:
        raise _invalid(
            f"{value} is not a supported push format. Please specify one of these "
            f"{list(PUSH_MODES)}."
        )
    return PUSH_MODES[value]


def push_frame(df: Any, *, group: FeatureGroup) -> pd.DataFrame:
    """Feast's `df` (column -> list of values) as a frame for the group's checks. Feast's
    `created` column is dropped unless the group has a column of that name; timestamps
    without a zone are UTC, as Feast reads them.

    Raises:
        FeastError: not columns of equal length (422, Feast's DataFrameSerializationError).
    """
    if (
        not isinstance(df, dict)
        or not df
        or not all(isinstance(k, str) and isinstance(v, list) for k, v in df.items())
        or len({len(v) for v in df.values()}) != 1
    ):
        raise FeastError(
            "Failed to serialize the provided dictionary into a pandas DataFrame: `df` must "
            "map column names to lists of values of the same length.",
            feast_class="DataFrameSerializationError",
        )
    columns = {k: pd.Series(v, dtype=object) for k, v in df.items()}
    own = {*group.entity.join_keys, EVENT, AVAILABLE, *(f.name for f in group.features.all())}
    if CREATED not in own:
        columns.pop(CREATED, None)
    return pd.DataFrame(columns)
