"""Token authentication for the prediction routes, with a short per-process cache.

The token lookup is a database query on every request, a third of the cost of a one-row
prediction; predictions are the hot path, so a key is trusted for TOKEN_CACHE_SECONDS after it was
last checked. A deleted token or a deactivated user is therefore refused within that bound.
"""

import threading
import time
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from mlplatform.api import BearerOrTokenAuthentication

TOKEN_CACHE_SECONDS = 5.0
_MAX_ENTRIES = 10_000
_cache: dict[str, tuple[float, Any, Any]] = {}
_lock = threading.Lock()


class CachedTokenAuthentication(BearerOrTokenAuthentication):
    def authenticate_credentials(self, key: str) -> Any:
        now = time.monotonic()
        with _lock:
            cached = _cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        user, token = super().authenticate_credentials(key)  # raises for bad or inactive
        with _lock:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()
            _cache[key] = (now + TOKEN_CACHE_SECONDS, user, token)
        return user, token


def token_cache_clear() -> None:
    with _lock:
        _cache.clear()


class CachedTokenScheme(OpenApiAuthenticationExtension):
    """OpenAPI: the same `Authorization: Token <key>` header, under its own scheme name."""

    target_class = CachedTokenAuthentication
    name = "servingTokenAuth"
    priority = 1

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'Token-based authentication: "Token <key>" or "Bearer <key>".',
        }
