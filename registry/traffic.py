"""An alias's traffic policy as a typed value: which versions answer its requests, and how.

    {"canary": {"version": 4, "percent": 10, "routing_field": "customer_id"?} | null,
     "shadows": [5, 6],
     "bounds": {"max_error_rate": 0.05, "max_p99_ms": 50, "window_seconds": 60,
                "min_requests": 100}}

- `canary`: `percent` of the alias's requests go to the canary version instead of the alias's
  own. A caller stays on one side while its routing key does not change: the `X-Routing-Key`
  header, else the request's `routing_field` (an entity key, say), else a random draw.
- `shadows`: versions that score a copy of every request off the request path; their answers are
  compared with the answer the caller got, never returned.
- `bounds`: a canary whose error rate or p99 latency over the last `window_seconds` (once it has
  answered `min_requests`) breaks them is removed from the policy automatically.

`TrafficPolicy.parse` checks a client's JSON and raises `ApplicationError` with the field at
fault; the registry's services check the versions themselves (ready, distinct, of the model).
"""

import math
from dataclasses import dataclass, field
from typing import Any

from mlplatform.errors import ApplicationError

BOUNDS = {
    "max_error_rate": (0.0, 1.0),
    "max_p99_ms": (0.0, 3_600_000.0),
    "window_seconds": (1.0, 86_400.0),
    "min_requests": (1.0, 1_000_000.0),
}
BOUND_DEFAULTS = {"window_seconds": 60.0, "min_requests": 50.0}
MAX_SHADOWS = 3
FIELD_MAX = 100


def _fail(field_name: str, message: str) -> ApplicationError:
    return ApplicationError(f"{field_name}: {message}", extra={"field": field_name})


def _version_number(value: Any, *, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(field_name, f"give a version number (a positive integer), not {value!r:.40}.")
    return value


def _number(value: Any, *, field_name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(field_name, f"give a number, not {value!r:.40}.")
    if not low <= float(value) <= high:
        raise _fail(field_name, f"must be between {low:g} and {high:g}, got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class TrafficPolicy:
    canary_version: int | None = None
    canary_percent: float = 0.0
    routing_field: str = ""
    shadows: tuple[int, ...] = ()
    bounds: dict[str, float] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.canary_version is None and not self.shadows and not self.bounds

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "TrafficPolicy":
        """The policy in a request body (`canary`, `shadows`, `bounds`; each optional)."""
        canary = data.get("canary")
        canary_version, percent, routing_field = None, 0.0, ""
        if canary is not None:
            if not isinstance(canary, dict):
                raise _fail("canary", 'give {"version": n, "percent": p} or null.')
            unknown = set(canary) - {"version", "percent", "routing_field"}
            if unknown:
                raise _fail("canary", f"unknown key {sorted(unknown)[0]!r}.")
            if "version" not in canary or "percent" not in canary:
                raise _fail("canary", 'give both "version" and "percent".')
            canary_version = _version_number(canary["version"], field_name="canary.version")
            percent = _number(canary["percent"], field_name="canary.percent", low=0.0, high=100.0)
            if percent <= 0:
                raise _fail("canary.percent", "must be above 0 (send canary: null to end it).")
            routing_field = canary.get("routing_field") or ""
            if not isinstance(routing_field, str) or len(routing_field) > FIELD_MAX:
                raise _fail("canary.routing_field", f"give a field name of at most {FIELD_MAX}.")
        shadows_raw = data.get("shadows") or []
        if not isinstance(shadows_raw, list):
            raise _fail("shadows", "give a list of version numbers.")
        if len(shadows_raw) > MAX_SHADOWS:
            raise _fail("shadows", f"at most {MAX_SHADOWS} shadow versions.")
        shadows = tuple(_version_number(v, field_name="shadows") for v in shadows_raw)
        if len(set(shadows)) != len(shadows):
            raise _fail("shadows", "a version is listed twice.")
        bounds_raw = data.get("bounds") or {}
        if not isinstance(bounds_raw, dict):
            raise _fail("bounds", 'give an object, e.g. {"max_error_rate": 0.05}.')
        unknown = set(bounds_raw) - set(BOUNDS)
        if unknown:
            raise _fail("bounds", f"unknown bound {sorted(unknown)[0]!r}; use {sorted(BOUNDS)}.")
        bounds = {
            name: _number(
                value, field_name=f"bounds.{name}", low=BOUNDS[name][0], high=BOUNDS[name][1]
            )
            for name, value in bounds_raw.items()
        }
        if bounds and not {"max_error_rate", "max_p99_ms"} & set(bounds):
            raise _fail("bounds", "give max_error_rate, max_p99_ms or both.")
        if bounds and canary_version is None:
            raise _fail("bounds", "bounds apply to a canary: give one.")
        if bounds:
            bounds = {**BOUND_DEFAULTS, **bounds}
        return cls(
            canary_version=canary_version,
            canary_percent=percent,
            routing_field=routing_field,
            shadows=shadows,
            bounds=bounds,
        )

    def to_json(self) -> dict[str, Any]:
        canary: dict[str, Any] | None = None
        if self.canary_version is not None:
            canary = {"version": self.canary_version, "percent": self.canary_percent}
            if self.routing_field:
                canary["routing_field"] = self.routing_field
        return {"canary": canary, "shadows": list(self.shadows), "bounds": dict(self.bounds)}
