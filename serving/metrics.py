"""Prometheus metrics for serving, plus a collector that reads job progress at scrape time.

Multi-process servers (gunicorn with several workers): set PROMETHEUS_MULTIPROC_DIR to an empty,
writable directory in the environment of the master process *before* it starts; every worker
then writes its counters there and `/metrics` aggregates all of them. Without it each worker
reports only its own counters.
"""

import os
from collections.abc import Iterator
from typing import Any

from django.db import DatabaseError
from django.db.models import Count, Sum
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from jobs.models import Job

# Whether this process's metric values live in PROMETHEUS_MULTIPROC_DIR: prometheus_client decides
# it once, when first imported (as this module imports it), so /metrics decides it the same way,
# not by the variable at scrape time (a library may set it later: Feast's metrics module does).
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

LABELS = ["model", "version", "protocol"]

REQUESTS = Counter(
    "mlplatform_predict_requests_total", "Prediction requests answered.", [*LABELS, "status"]
)
ERRORS = Counter(
    "mlplatform_predict_errors_total", "Prediction requests answered with an error.", LABELS
)
LATENCY = Histogram(
    "mlplatform_predict_latency_seconds",
    "Time to answer a prediction request, from parsing to the response body.",
    LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ROWS = Counter("mlplatform_predict_rows_total", "Rows predicted in real time.", LABELS)
CACHE = Counter("mlplatform_model_cache_total", "Model cache lookups.", ["outcome"])
LOADED = Gauge(
    "mlplatform_models_loaded", "Estimators held in the model cache.", multiprocess_mode="livesum"
)

SHADOW_LABELS = ["model", "version"]  # the shadow version
SHADOW_REQUESTS = Counter(
    "mlplatform_shadow_requests_total", "Request copies scored by a shadow version.", SHADOW_LABELS
)
SHADOW_ERRORS = Counter(
    "mlplatform_shadow_errors_total",
    "Request copies a shadow version could not score (bad input for it, engine failure).",
    SHADOW_LABELS,
)
SHADOW_DROPS = Counter(
    "mlplatform_shadow_drops_total",
    "Request copies dropped because the shadow queue was full.",
    SHADOW_LABELS,
)
SHADOW_AGREEMENT = Histogram(
    "mlplatform_shadow_agreement_ratio",
    "Per scored batch of copies, the share of rows whose label agrees with the callers' answers.",
    SHADOW_LABELS,
    buckets=(0.5, 0.8, 0.9, 0.95, 0.99, 1.0),
)
SHADOW_ABS_DIFF = Histogram(
    "mlplatform_shadow_abs_difference",
    "Per scored batch of copies, the mean absolute difference from the callers' answers.",
    SHADOW_LABELS,
    buckets=(0.001, 0.01, 0.1, 1.0, 10.0, 100.0),
)
SHADOW_LATENCY = Histogram(
    "mlplatform_shadow_latency_seconds",
    "Time a shadow version took to score a request copy (a batch's time shared by rows).",
    SHADOW_LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


# Labelled children, looked up once per label set: `.labels()` costs more than `.inc()`.
_children: dict[tuple[str, str, str, int], tuple[Any, Any, Any, Any]] = {}


def record_request(
    *, model: str, version: str, protocol: str, status: int, seconds: float, rows: int
) -> None:
    key = (model, version, protocol, status)
    children = _children.get(key)
    if children is None:
        children = (
            REQUESTS.labels(model, version, protocol, str(status)),
            LATENCY.labels(model, version, protocol),
            ERRORS.labels(model, version, protocol),
            ROWS.labels(model, version, protocol),
        )
        if len(_children) < 10_000:
            _children[key] = children
    requests, latency, errors, rows_counter = children
    requests.inc()
    latency.observe(seconds)
    if status >= 400:
        errors.inc()
    elif rows:
        rows_counter.inc(rows)


def record_shadow(
    *,
    model: str,
    version: str,
    ok: bool = True,
    copies: int = 1,
    seconds: float = 0.0,
    agreement: float | None = None,
    abs_difference: float | None = None,
) -> None:
    """Request copies scored together by a shadow version (or one it could not score):
    `seconds` is each copy's share of the predict, `agreement` / `abs_difference` the batch's."""
    children = _shadow_children.get((model, version))
    if children is None:
        children = _shadow_children[(model, version)] = tuple(
            metric.labels(model, version)
            for metric in (
                SHADOW_REQUESTS,
                SHADOW_ERRORS,
                SHADOW_LATENCY,
                SHADOW_AGREEMENT,
                SHADOW_ABS_DIFF,
            )
        )
    requests, errors, latency, agreements, differences = children
    requests.inc(copies)
    if not ok:
        errors.inc(copies)
        return
    latency.observe(seconds)
    if agreement is not None:
        agreements.observe(agreement)
    if abs_difference is not None:
        differences.observe(abs_difference)


_shadow_children: dict[tuple[str, str], tuple[Any, ...]] = {}


def record_shadow_drop(*, model: str, version: str) -> None:
    SHADOW_DROPS.labels(model, version).inc()


def version_figures(
    *, model: str | None = None, version: str | None = None
) -> list[dict[str, Any]]:
    """This process's counters per model version, all protocols together: `requests`,
    `failures` (status 400 and above), `rows` predicted and `seconds` spent answering. Each
    process counts its own requests (these are not the multi-process figures of /metrics)."""
    figures: dict[tuple[str, str], dict[str, Any]] = {}

    def entry(labels: dict[str, str]) -> dict[str, Any] | None:
        key = (labels["model"], labels["version"])
        if not key[0] or (model is not None and key[0] != model):
            return None
        if version is not None and key[1] != version:
            return None
        return figures.setdefault(
            key,
            {
                "name": key[0],
                "version": key[1],
                "requests": 0,
                "failures": 0,
                "rows": 0,
                "seconds": 0.0,
            },
        )

    for metric, suffix, field in (
        (REQUESTS, "_total", "requests"),
        (ERRORS, "_total", "failures"),
        (ROWS, "_total", "rows"),
        (LATENCY, "_sum", "seconds"),
    ):
        for family in metric.collect():
            for sample in family.samples:
                if not sample.name.endswith(suffix):
                    continue
                found = entry(sample.labels)
                if found is not None:
                    found[field] += sample.value if field == "seconds" else int(sample.value)
    return [figures[key] for key in sorted(figures)]


_cache_children: dict[str, Any] = {}


def record_cache(outcome: str) -> None:
    child = _cache_children.get(outcome)
    if child is None:
        child = _cache_children[outcome] = CACHE.labels(outcome)
    child.inc()


def record_loaded(count: int) -> None:
    LOADED.set(count)


class JobCollector(Collector):
    """Job counts by kind and status, and rows scored by batch jobs, read from the DB on scrape."""

    def collect(self) -> Iterator[Any]:
        jobs = GaugeMetricFamily(
            "mlplatform_jobs", "Jobs by kind and status.", labels=["kind", "status"]
        )
        rows = GaugeMetricFamily(
            "mlplatform_batch_rows_scored", "Rows scored by batch scoring jobs (progress done)."
        )
        try:
            for item in Job.objects.values("kind", "status").annotate(n=Count("id")).order_by():
                jobs.add_metric([item["kind"], item["status"]], item["n"])
            done = Job.objects.filter(kind=Job.Kind.BATCH_SCORING).aggregate(s=Sum("progress_done"))
        except DatabaseError:
            # A scrape must never fail because the DB blinked; the series are simply absent.
            return
        rows.add_metric([], done["s"] or 0)
        yield jobs
        yield rows


_job_registry = CollectorRegistry(auto_describe=False)
_job_registry.register(JobCollector())


def collector_register(collector: Collector) -> None:
    """Add a collector read from the DB at scrape time (apps above serving: monitoring)."""
    _job_registry.register(collector)


def render() -> tuple[bytes, str]:
    """The text exposition of every serving metric (all processes when multi-process)."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    return body + generate_latest(_job_registry), CONTENT_TYPE_LATEST
