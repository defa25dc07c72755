"""Feature-store-backed prediction: fill the features a request leaves out from the online store.

When a version is linked to a feature service, a request may carry only the entity keys (and
request-time columns). Every model input the request does not carry is read, per row, from the
online store by entity key; a value still missing there is a 400 naming the column and entity.
"""

import threading
import time
from typing import Any

from features import online
from features.models import Feature
from registry.models import ModelVersion
from serving.codecs.columns import DecodedRequest, InputError

_KEYS_TTL_SECONDS = 30.0
_keys: dict[int, tuple[float, list[str]]] = {}
_lock = threading.Lock()


def entity_keys(*, feature_service_id: int) -> list[str]:
    """Join keys of every entity the service's features belong to (cached briefly; a catalog
    change in this process drops the cache at once)."""
    now = time.monotonic()
    with _lock:
        cached = _keys.get(feature_service_id)
    if cached and cached[0] > now:
        return cached[1]
    keys: list[str] = []
    features = Feature.objects.filter(services__id=feature_service_id).select_related(
        "group__entity"
    )
    for feature in features:
        for key in feature.group.entity.join_keys or []:
            if key not in keys:
                keys.append(key)
    with _lock:
        _keys[feature_service_id] = (now + _KEYS_TTL_SECONDS, keys)
    return keys


def entity_keys_clear(**_: Any) -> None:
    """Forget every cached key list: connected to features.signals.catalog_changed (see
    serving/apps.py), so a catalog change in this process is seen by the next prediction."""
    with _lock:
        _keys.clear()


def request_enrich(
    *, version: ModelVersion, decoded: DecodedRequest
) -> tuple[DecodedRequest, list[str]]:
    """Return the request with missing model inputs filled in, and the entity-key columns the
    request may carry beside the model inputs.

    Raises:
        InputError: a key column is missing, or the store has no value for a needed feature.
    """
    if not version.feature_service_id:
        return decoded, []
    keys = entity_keys(feature_service_id=version.feature_service_id)
    wanted = version.signature.column_names
    missing = [name for name in wanted if name not in decoded.columns]
    if not missing:
        return decoded, keys
    absent_keys = [key for key in keys if key not in decoded.columns]
    if absent_keys:
        raise InputError(
            f"Missing column '{missing[0]}': send it, or the entity key "
            f"'{absent_keys[0]}' to read it from the feature store.",
            field=absent_keys[0],
        )
    entity_rows = [
        {key: decoded.columns[key][position] for key in keys} for position in range(decoded.n_rows)
    ]
    feature_service = version.feature_service
    assert feature_service is not None
    found = online.online_rows(feature_service=feature_service, entity_rows=entity_rows)
    columns: dict[str, Any] = dict(decoded.columns)
    for name in missing:
        values = []
        for position, row in enumerate(found):
            value = row.get(name)
            if value is None:
                entity = ", ".join(f"{k}={entity_rows[position][k]!r}" for k in keys)
                raise InputError(
                    f"Feature '{name}' has no value in the online store for entity {entity} "
                    f"(row {position}).",
                    field=name,
                    row=position,
                )
            values.append(value)
        columns[name] = values
    return DecodedRequest(
        columns=columns,
        n_rows=decoded.n_rows,
        outputs=decoded.outputs,
        request_id=decoded.request_id,
    ), keys
