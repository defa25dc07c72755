"""The online store: the latest available values per entity and group, for low-latency reads.

A Django table by default; Redis when settings.MLPLATFORM_ONLINE_STORE is a `redis://` URL.
Materialisation is incremental: it reads partitions it has not read before, plus rows of older
partitions that became available since the last run (a nightly rule makes rows appear later
than they were ingested), keeps the best row per key, and only ever replaces a stored value
by a newer one, so running it twice changes nothing. TTL is applied when reading.
"""

# DuckDB SQL is assembled from quoted identifiers and literals (offline.ident/literal); user
# values never reach it unquoted, and the one user query is sandboxed (transformations.py).
# ruff: noqa: S608

import contextlib
import json
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from features import offline
from features.ingestion import AVAILABLE, EVENT
from features.models import Feature, FeatureGroup, FeatureService, OfflinePartition, OnlineValue
from mlplatform.errors import ApplicationError

PRESENT, MISSING, EXPIRED = "present", "missing", "expired"


def entity_key(values: Sequence[Any]) -> str:
    """The store's key for join key values: text, so 7 and "7" name the same entity."""
    return json.dumps([_key_text(v) for v in values], separators=(",", ":"))


def _key_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Stored(Protocol):
    values: dict[str, Any]
    event_timestamp: datetime
    available_at: datetime


class _Record:
    def __init__(self, values: dict[str, Any], event: datetime, available: datetime):
        self.values = values
        self.event_timestamp = event
        self.available_at = available


class Store(Protocol):
    def get_many(self, group: FeatureGroup, keys: Sequence[str]) -> dict[str, Stored]: ...

    def put_many(self, group: FeatureGroup, records: dict[str, Stored]) -> int: ...

    def count(self, group: FeatureGroup) -> int: ...

    def clear(self, group_id: int) -> int: ...


class DatabaseStore:
    def get_many(self, group: FeatureGroup, keys: Sequence[str]) -> dict[str, Stored]:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        # The hot path of online reads: plain SQL, no queryset compilation per request.
        table = OnlineValue._meta.db_table
        marks = ", ".join(["%s"] * len(unique))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT entity_key, {connection.ops.quote_name('values')}, event_timestamp, "
                f"available_at FROM {table} WHERE group_id = %s AND entity_key IN ({marks})",
                [group.pk, *unique],
            )
            rows = cursor.fetchall()
        return {
            key: _Record(
                json.loads(values) if isinstance(values, str | bytes) else values,
                _aware(event),
                _aware(available),
            )
            for key, values, event, available in rows
        }

    def put_many(self, group: FeatureGroup, records: dict[str, Stored]) -> int:
        objects = [
            OnlineValue(
                group=group,
                entity_key=key,
                values=record.values,
                event_timestamp=record.event_timestamp,
                available_at=record.available_at,
            )
            for key, record in records.items()
        ]
        OnlineValue.objects.bulk_create(
            objects,
            update_conflicts=True,
            unique_fields=["group", "entity_key"],
            update_fields=["values", "event_timestamp", "available_at", "updated_at"],
            batch_size=1000,
        )
        return len(objects)

    def count(self, group: FeatureGroup) -> int:
        return OnlineValue.objects.filter(group=group).count()

    def clear(self, group_id: int) -> int:
        return OnlineValue.objects.filter(group_id=group_id).delete()[0]


class RedisStore:
    """One string per (group, entity): JSON {"v": values, "e": event, "a": available} (µs)."""

    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5)

    @staticmethod
    def _name(group: FeatureGroup, key: str) -> str:
        return f"mlp:features:{group.pk}:{key}"

    def get_many(self, group: FeatureGroup, keys: Sequence[str]) -> dict[str, Stored]:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        found: dict[str, Stored] = {}
        for key, raw in zip(
            unique, self.client.mget([self._name(group, k) for k in unique]), strict=True
        ):
            if raw is None:
                continue
            data = json.loads(raw)
            found[key] = _Record(data["v"], _from_micros(data["e"]), _from_micros(data["a"]))
        return found

    def put_many(self, group: FeatureGroup, records: dict[str, Stored]) -> int:
        pipe = self.client.pipeline(transaction=False)
        for key, record in records.items():
            body = {
                "v": record.values,
                "e": _micros(record.event_timestamp),
                "a": _micros(record.available_at),
            }
            pipe.set(self._name(group, key), json.dumps(body, separators=(",", ":")))
        pipe.execute()
        return len(records)

    def count(self, group: FeatureGroup) -> int:
        return sum(1 for _ in self.client.scan_iter(match=f"mlp:features:{group.pk}:*", count=1000))

    def clear(self, group_id: int) -> int:
        removed = 0
        batch: list[bytes] = []
        for name in self.client.scan_iter(match=f"mlp:features:{group_id}:*", count=1000):
            batch.append(name)
            if len(batch) == 1000:
                removed += self.client.unlink(*batch)
                batch = []
        if batch:
            removed += self.client.unlink(*batch)
        return removed


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _from_micros(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)


_redis_stores: dict[str, RedisStore] = {}


def store() -> Store:
    """The configured online store (read at call time, so tests and workers can switch)."""
    url = settings.MLPLATFORM_ONLINE_STORE
    if url.startswith(("redis://", "rediss://")):
        # One client (and connection pool) per process and URL, not a new TCP connection per
        # read; redis-py's pool is thread-safe and starts afresh in a forked child.
        backend = _redis_stores.get(url)
        if backend is None:
            backend = _redis_stores.setdefault(url, RedisStore(url))
        return backend
    return DatabaseStore()


# --- reads ------------------------------------------------------------------------------------


_resolved: dict[Any, tuple[float, list[Feature]]] = {}


def catalog_cache_clear(**_: Any) -> None:
    """Forget cached lookups; connected to catalog saves and deletes in this process."""
    _resolved.clear()


def features_resolve_cached(
    *, refs: Sequence[str] | None = None, feature_service: str | FeatureService | None = None
) -> list[Feature]:
    """features_resolve, remembered per process for a few seconds: online reads are hot and the
    catalog changes rarely (MLPLATFORM_FEATURE_CATALOG_TTL_SECONDS, 0 turns it off)."""
    ttl = settings.MLPLATFORM_FEATURE_CATALOG_TTL_SECONDS
    service_key = (
        feature_service.pk if isinstance(feature_service, FeatureService) else feature_service
    )
    key = (tuple(refs) if refs is not None else None, service_key)
    now = time.monotonic()
    hit = _resolved.get(key)
    if ttl > 0 and hit is not None and now - hit[0] < ttl:
        return hit[1]
    features = features_resolve(refs=refs, feature_service=feature_service)
    if ttl > 0:
        if len(_resolved) > 1000:
            _resolved.clear()
        _resolved[key] = (now, features)
    return features


def features_resolve(
    *, refs: Sequence[str] | None = None, feature_service: str | FeatureService | None = None
) -> list[Feature]:
    """Features named `group:feature` (in the order given) or those of a feature service.

    Raises:
        ApplicationError: neither or both given, a malformed reference, or an unknown name.
    """
    if (refs is None) == (feature_service is None):
        raise ApplicationError("Give exactly one of `features` and `feature_service`.")
    if feature_service is not None:
        service = feature_service
        if not isinstance(service, FeatureService):
            service = FeatureService.objects.filter(name=feature_service).first()  # type: ignore[assignment]
            if service is None:
                raise ApplicationError(
                    f"feature_service: unknown feature service {feature_service!r}."
                )
        assert isinstance(service, FeatureService)
        return list(
            service.features.select_related("group__entity").order_by(
                "group__name", "position", "name"
            )
        )
    assert refs is not None
    features = []
    for ref in refs:
        if not isinstance(ref, str) or ref.count(":") != 1:
            raise ApplicationError(f"features: {ref!r} is not 'group:feature'.")
        group_name, name = ref.split(":")
        feature = (
            Feature.objects.select_related("group__entity")
            .filter(group__name=group_name, name=name)
            .first()
        )
        if feature is None:
            raise ApplicationError(f"features: unknown feature {ref!r}.")
        features.append(feature)
    if not features:
        raise ApplicationError("features: at least one feature is required.")
    return features


def online_read(
    *,
    features: Sequence[Feature],
    entity_rows: Sequence[dict[str, Any]],
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Values and statuses per entity row, keyed by the feature's plain name.

    Raises:
        ApplicationError: an entity row lacks a join key some feature's group needs.
    """
    values, statuses, _ = online_read_timed(features=features, entity_rows=entity_rows, now=now)
    return values, statuses


def online_read_timed(
    *,
    features: Sequence[Feature],
    entity_rows: Sequence[dict[str, Any]],
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, str]], list[dict[str, datetime | None]]]:
    """online_read, plus the event timestamp of each stored value (None where none is stored).

    Raises:
        ApplicationError: an entity row lacks a join key some feature's group needs.
    """
    now = now or timezone.now()
    backend = store()
    groups: dict[int, tuple[FeatureGroup, list[Feature]]] = {}
    for feature in features:
        groups.setdefault(feature.group_id, (feature.group, []))[1].append(feature)
    values: list[dict[str, Any]] = [{} for _ in entity_rows]
    statuses: list[dict[str, str]] = [{} for _ in entity_rows]
    events: list[dict[str, datetime | None]] = [{} for _ in entity_rows]
    for group, group_features in groups.values():
        join_keys = group.entity.join_keys
        keys = []
        for index, row in enumerate(entity_rows):
            missing = [k for k in join_keys if row.get(k) is None]
            if missing:
                raise ApplicationError(
                    f"entities: row {index + 1} lacks join key(s) {missing} of entity "
                    f"'{group.entity.name}'."
                )
            keys.append(entity_key([row[k] for k in join_keys]))
        found = backend.get_many(group, keys)
        horizon = now - timedelta(seconds=group.ttl_seconds) if group.ttl_seconds else None
        for index, key in enumerate(keys):
            record = found.get(key)
            if record is None:
                status = MISSING
            elif horizon is not None and record.event_timestamp < horizon:
                status = EXPIRED
            else:
                status = PRESENT
            for feature in group_features:
                values[index][feature.name] = (
                    record.values.get(feature.name) if status == PRESENT and record else None
                )
                statuses[index][feature.name] = status
                events[index][feature.name] = record.event_timestamp if record else None
    return values, statuses, events


def online_rows(
    *, feature_service: FeatureService, entity_rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """For each entity row, in order: {feature name: latest available value or None}.

    None when the entity is missing from the online store or its value is older than the
    group's TTL. Used in-process by feature-service-backed predictions.

    Raises:
        ApplicationError: an entity row lacks a join key.
    """
    features = features_resolve_cached(feature_service=feature_service)
    values, _ = online_read(features=features, entity_rows=entity_rows)
    return values


# --- materialisation --------------------------------------------------------------------------


def materialise(
    *, group: FeatureGroup, chunk_rows: int, progress: Any = None, now: datetime | None = None
) -> dict[str, int]:
    """Bring the group's online values up to `now`; returns counts of rows read and written."""
    now = now or timezone.now()
    backend = store()
    keys = list(group.entity.join_keys)
    features = list(group.features.all())
    new_parts = list(group.partitions.filter(materialised=False).order_by("id"))
    since = group.materialised_at
    old_parts = (
        list(group.partitions.filter(materialised=True, max_available_at__gt=since))
        if since is not None
        else []
    )
    if not new_parts and not old_parts:
        _watermark(group, now, [])
        return {"candidates": 0, "written": 0}
    now_sql = offline.literal(now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" "))
    since_sql = (
        offline.literal(since.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" "))
        if since
        else None
    )
    written = 0
    candidates = 0
    with contextlib.ExitStack() as stack:
        con = stack.enter_context(contextlib.closing(offline.connect()))
        new_paths = stack.enter_context(offline.local_paths([p.path for p in new_parts]))
        old_paths = stack.enter_context(offline.local_paths([p.path for p in old_parts]))
        selects = []
        if new_paths:
            selects.append(
                f"SELECT * FROM {offline.parquet_scan(new_paths)} "
                f"WHERE {AVAILABLE} <= TIMESTAMP {now_sql}"
            )
        if old_paths and since_sql:
            selects.append(
                f"SELECT * FROM {offline.parquet_scan(old_paths)} WHERE {AVAILABLE} > "
                f"TIMESTAMP {since_sql} AND {AVAILABLE} <= TIMESTAMP {now_sql}"
            )
        key_sql = ", ".join(offline.ident(k) for k in keys)
        payload = ", ".join(f"{offline.literal(f.name)}: {offline.ident(f.name)}" for f in features)
        payload = f"{{'__e': {EVENT}, '__a': {AVAILABLE}{', ' + payload if payload else ''}}}"
        union = " UNION ALL BY NAME ".join(selects)
        # DuckDB aggregates out of core; the result (one row per key) is fetched in chunks.
        reader = con.sql(
            f"SELECT {key_sql}, arg_max({payload}, {{'e': {EVENT}, 'a': {AVAILABLE}}}) AS m "
            f"FROM ({union}) GROUP BY {key_sql}"
        ).to_arrow_reader(chunk_rows)
        for batch in reader or ():
            records = batch.to_pylist()
            candidates += len(records)
            written += _merge(backend, group, keys, features, records)
            if progress is not None:
                progress(len(records))
    _watermark(group, now, new_parts)
    return {"candidates": candidates, "written": written}


def _merge(
    backend: Store,
    group: FeatureGroup,
    keys: Sequence[str],
    features: Sequence[Feature],
    records: Iterable[dict[str, Any]],
) -> int:
    incoming: dict[str, _Record] = {}
    for row in records:
        best = row["m"]
        values = {f.name: _jsonable(best.get(f.name)) for f in features}
        incoming[entity_key([row[k] for k in keys])] = _Record(
            values, best["__e"].replace(tzinfo=UTC), best["__a"].replace(tzinfo=UTC)
        )
    existing = backend.get_many(group, list(incoming))
    newer: dict[str, Stored] = {}
    for key, candidate in incoming.items():
        current = existing.get(key)
        if current is not None and (current.event_timestamp, current.available_at) >= (
            candidate.event_timestamp,
            candidate.available_at,
        ):
            continue
        newer[key] = candidate
    if newer:
        backend.put_many(group, newer)
    return len(newer)


def online_write(*, group: FeatureGroup, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows in the offline store's layout (join keys, event_timestamp, available_at as
    naive UTC, the features) straight to the online store: the newest row per key, and only
    over an older stored value, as materialisation does. Returns the number of keys written."""
    keys = list(group.entity.join_keys)
    features = list(group.features.all())
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = entity_key([row[k] for k in keys])
        current = best.get(key)
        if current is None or (row[EVENT], row[AVAILABLE]) >= (current[EVENT], current[AVAILABLE]):
            best[key] = row
    records = [
        {
            **{k: row[k] for k in keys},
            "m": {
                "__e": row[EVENT],
                "__a": row[AVAILABLE],
                **{f.name: row[f.name] for f in features},
            },
        }
        for row in best.values()
    ]
    return _merge(store(), group, keys, features, records)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, float) and value != value:
        return None
    return value


def _watermark(group: FeatureGroup, now: datetime, parts: Sequence[OfflinePartition]) -> None:
    with transaction.atomic():
        OfflinePartition.objects.filter(pk__in=[p.pk for p in parts]).update(materialised=True)
        FeatureGroup.objects.filter(pk=group.pk).update(materialised_at=now)
    group.materialised_at = now
