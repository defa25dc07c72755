"""Which version answers a request on an alias with a traffic policy, and the canary's guard.

`route_resolve` is what every protocol view and the predict lane call instead of a bare
`selectors.version_resolve`: the version that answers by default (the primary) and, when the
request reached it through an alias (the alias route, or the default route resolving through
`production`), that alias's canary, shadows and bounds. A request naming a version gets no
policy. Routes are cached per process for MLPLATFORM_ALIAS_TTL_SECONDS, as resolution is, so a
request on an alias without a policy costs what it cost before.

`Route.pick` splits traffic: a request's routing key (the `X-Routing-Key` header, else the
value of the policy's `routing_field` in its first row) is hashed with the model's name into
[0, 100) and compared with the canary's percent, so a caller stays on one side of the split in
every process; a request without a key is drawn at random.

`outcome_record` keeps, per process, a sliding window of the canary's answers (status and
latency) per alias. When the window holds at least `min_requests` answers from the last
`window_seconds` and breaks `max_error_rate` or `max_p99_ms`, the canary is removed from the
policy (`registry.services.alias_canary_remove`, a no-op when another process got there first)
and this process's routes are forgotten, so its next request goes to the primary. Each process
judges its own window: with N web processes each sees about 1/N of the canary's traffic, and
the first whose window breaks the bounds removes the canary for all (they see the change within
the resolution TTL).
"""

import hashlib
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db.models import Prefetch

from registry import services as registry_services
from registry.models import ModelAlias, ModelVersion
from serving import selectors
from serving.codecs.columns import DecodedRequest

logger = logging.getLogger(__name__)

PRIMARY = "primary"
CANARY = "canary"
SHADOW = "shadow"
DEFAULT_ALIAS = "production"
ROUTING_KEY_MAX = 256  # characters of X-Routing-Key (or of a routing field's value) hashed
WINDOW_MAX = 100_000  # outcomes kept per alias, whatever the window's length


@dataclass(frozen=True)
class Route:
    """The versions behind one request target. `alias_id` is None when no policy applies."""

    primary: ModelVersion
    alias_id: int | None = None
    alias: str = ""
    canary: ModelVersion | None = None
    percent: float = 0.0
    routing_field: str = ""
    shadows: tuple[ModelVersion, ...] = ()
    bounds: dict[str, float] = field(default_factory=dict)

    def pick(self, key: str | None) -> tuple[ModelVersion, str]:
        """The version that answers a request with routing key `key` (None: a random draw),
        and its role."""
        if self.canary is None:
            return self.primary, PRIMARY
        # A random draw is a traffic split, not a secret.
        share = (
            random.random() * 100.0  # noqa: S311
            if key is None
            else key_share(self.primary.model.name, key)
        )
        if share < self.percent:
            return self.canary, CANARY
        return self.primary, PRIMARY


def key_share(model_name: str, key: str) -> float:
    """A routing key's place in [0, 100): the same in every process and on every run."""
    digest = hashlib.blake2b(f"{model_name}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100.0


def header_key(value: str | None) -> str | None:
    """The routing key an `X-Routing-Key` header gives (None when absent or empty)."""
    if not value:
        return None
    return value[:ROUTING_KEY_MAX]


def request_key(route: Route, header: str | None, decoded: DecodedRequest) -> str | None:
    """A request's routing key: its `X-Routing-Key` header, else its routing field's value."""
    key = header_key(header)
    return key if key is not None else field_key(route, decoded)


def field_key(route: Route, decoded: DecodedRequest) -> str | None:
    """The routing key in a decoded request: its first row's value of the policy's routing
    field (None when the policy names none or the request lacks it)."""
    if not route.routing_field or decoded.n_rows < 1:
        return None
    values = decoded.columns.get(route.routing_field)
    if values is None or len(values) < 1:
        return None
    value = values[0]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 42 and 42.0 are the same customer
    return str(value)[:ROUTING_KEY_MAX]


# --- resolution, cached per process ----------------------------------------------------------

_routes: dict[tuple[str, int | None, str | None], tuple[float, Route]] = {}
_lock = threading.Lock()


def route_resolve(
    *, model_name: str, version: int | None = None, alias: str | None = None
) -> Route:
    """The route of a request target (see the module's docstring).

    Raises:
        NotFoundError: unknown model, version or alias, or no ready version.
        ConflictError: the named version (or the alias's version) is not ready.
    """
    key = (model_name, version, alias)
    now = time.monotonic()
    cached = _routes.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    primary = selectors.version_resolve(model_name=model_name, version=version, alias=alias)
    route = Route(primary=primary) if version is not None else _policy_route(primary, alias)
    ttl = float(settings.MLPLATFORM_ALIAS_TTL_SECONDS)
    if ttl > 0:
        with _lock:
            if len(_routes) > 10_000:  # unbounded names must not grow memory forever
                _routes.clear()
            _routes[key] = (now + ttl, route)
    return route


def _policy_route(primary: ModelVersion, alias: str | None) -> Route:
    ready = ModelVersion.objects.filter(status=ModelVersion.Status.READY).select_related("model")
    link = (
        ModelAlias.objects.filter(
            model_id=primary.model_id, alias=alias or DEFAULT_ALIAS, version_id=primary.pk
        )
        .select_related("canary_version__model")
        .prefetch_related(Prefetch("shadows", queryset=ready.order_by("version")))
        .first()
    )
    if link is None:  # the default route answered by the highest ready version: no policy
        return Route(primary=primary)
    canary = link.canary_version
    if canary is not None and canary.status != ModelVersion.Status.READY:
        canary = None  # quarantined since: the primary answers its share
    shadows = tuple(link.shadows.all())
    if canary is None and not shadows:
        return Route(primary=primary)
    return Route(
        primary=primary,
        alias_id=link.pk,
        alias=link.alias,
        canary=canary,
        percent=float(link.canary_percent) if canary is not None else 0.0,
        routing_field=link.routing_field if canary is not None else "",
        shadows=shadows,
        bounds=dict(link.bounds or {}) if canary is not None else {},
    )


def cache_clear() -> None:
    """Forget this process's routes and resolutions (the next request reads the database)."""
    with _lock:
        _routes.clear()
    selectors.resolution_cache_clear()


# --- the canary's guard ----------------------------------------------------------------------


@dataclass
class _Window:
    canary_id: int
    outcomes: deque[tuple[float, bool, float]] = field(
        default_factory=lambda: deque(maxlen=WINDOW_MAX)
    )
    checked_at: float = 0.0


_windows: dict[int, _Window] = {}
_windows_lock = threading.Lock()


def outcome_record(*, route: Route, version: ModelVersion, status: int, seconds: float) -> None:
    """Count one answer of the alias's canary towards its bounds (other answers are ignored);
    removes the canary when they are broken."""
    canary = route.canary
    if not route.bounds or canary is None or route.alias_id is None or version.pk != canary.pk:
        return
    now = time.monotonic()
    bounds = route.bounds
    window_seconds = float(bounds.get("window_seconds", 60.0))
    with _windows_lock:
        window = _windows.get(route.alias_id)
        if window is None or window.canary_id != canary.pk:
            window = _windows[route.alias_id] = _Window(canary_id=canary.pk)
        outcomes = window.outcomes
        outcomes.append((now, not 200 <= status < 300, seconds * 1000.0))
        while outcomes and outcomes[0][0] < now - window_seconds:
            outcomes.popleft()
        if len(outcomes) < bounds.get("min_requests", 50.0):
            return
        # Judged on every answer while the window is small; at most ten times a second beyond.
        if len(outcomes) > 1000 and now - window.checked_at < 0.1:
            return
        window.checked_at = now
        broken = _broken(outcomes, bounds)
        if broken is None:
            return
        # Judged once: answers still in flight with the old route start a new window, and
        # the registry's removal is a no-op when the canary is already gone.
        del _windows[route.alias_id]
    removed = registry_services.alias_canary_remove(
        alias_id=route.alias_id, canary_version_id=canary.pk, reason=broken
    )
    if removed:
        logger.warning("%s: %s", route.primary.model.name, broken)
    cache_clear()


def _broken(outcomes: deque[tuple[float, bool, float]], bounds: dict[str, float]) -> str | None:
    """Why a window of outcomes breaks the bounds, or None."""
    count = len(outcomes)
    errors = sum(1 for _, failed, _ in outcomes if failed)
    max_error_rate = bounds.get("max_error_rate")
    if max_error_rate is not None and errors / count > max_error_rate:
        return (
            f"error rate {errors / count:.1%} over its last {count} requests is above "
            f"{max_error_rate:.1%}"
        )
    max_p99 = bounds.get("max_p99_ms")
    if max_p99 is not None:
        p99 = float(np.percentile([latency for _, _, latency in outcomes], 99))
        if p99 > max_p99:
            return (
                f"p99 latency {p99:.1f} ms over its last {count} requests is above {max_p99:g} ms"
            )
    return None


def windows_clear() -> None:
    """Forget this process's canary windows."""
    with _windows_lock:
        _windows.clear()


def role_of(route: Route, version: ModelVersion) -> str:
    return CANARY if route.canary is not None and version.pk == route.canary.pk else PRIMARY
