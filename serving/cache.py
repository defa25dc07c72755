"""Per-process LRU of serving engines (`serving.engines`), keyed by what they run.

Keyed by content, not by version id: an ONNX engine by its graph's sha256, a runner engine by its
artifact's, so two versions with the same bytes share one engine. Every load goes through
`serving.engines.engine_build`, which re-checks the graph's sha256 (a runner re-checks the
artifact's before it loads anything).
"""

import threading
from collections import OrderedDict
from typing import Any

from django.conf import settings

from registry.models import ModelVersion
from serving.engines import Engine, engine_build


def _key(version: ModelVersion) -> str:
    return f"{version.engine}:{version.graph_sha256 or version.sha256}"


class EstimatorCache:
    """Thread-safe LRU; a miss loads outside the global lock so other models keep serving."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        # One lock per key being loaded: concurrent misses on the same model load it once.
        self._loading: dict[str, threading.Lock] = {}
        self.hits = 0
        self.misses = 0

    def get(self, version: ModelVersion) -> Any:
        key = _key(version)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                _count("hit")
                return self._items[key]
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:
            with self._lock:
                if key in self._items:  # loaded by another thread while we waited
                    self._items.move_to_end(key)
                    self.hits += 1
                    _count("hit")
                    return self._items[key]
                self.misses += 1
                _count("miss")
            estimator = engine_build(version)
            with self._lock:
                self._items[key] = estimator
                self._items.move_to_end(key)
                size = max(1, int(settings.MLPLATFORM_MODEL_CACHE_SIZE))
                while len(self._items) > size:
                    self._items.popitem(last=False)
                self._loading.pop(key, None)
                _loaded_gauge(len(self._items))
            return estimator

    def contains(self, version: ModelVersion) -> bool:
        with self._lock:
            return _key(version) in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = 0
            self.misses = 0
            _loaded_gauge(0)


_cache = EstimatorCache()


def engine_for(version: ModelVersion) -> Engine:
    """The engine of a ready version, from this process's LRU (built on a miss).

    Raises:
        serving.engines.EngineUnavailable: not servable (see `engine_build`).
    """
    engine: Engine = _cache.get(version)
    return engine


def cache_stats() -> dict[str, int]:
    return {"hits": _cache.hits, "misses": _cache.misses, "loaded": len(_cache)}


def cache_clear() -> None:
    _cache.clear()


def _metrics() -> Any:
    # Imported at first use, not with this module: the metrics module may be configured for
    # multi-process mode at startup. Kept afterwards: a `from … import` in a function runs
    # importlib's Python code on every call, a cost on every prediction's cache hit.
    global _metrics_module
    if _metrics_module is None:
        from serving import metrics

        _metrics_module = metrics
    return _metrics_module


_metrics_module: Any = None


def _count(outcome: str) -> None:
    _metrics().record_cache(outcome)


def _loaded_gauge(count: int) -> None:
    _metrics().record_loaded(count)
