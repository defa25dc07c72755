"""Writes and actions for serving: predict with a version, warm it, log predictions."""

import logging
import os
import threading
import time
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import sklearn
from django.conf import settings
from django.utils import timezone

from registry import services as registry_services
from registry.models import ModelAlias, ModelVersion
from serving import cache, enrichment, predictionlog, runners
from serving.codecs.columns import (
    DecodedRequest,
    InputError,
    Matrix,
    PredictionResult,
    columns_to_matrix,
    jsonable_column,
    records_to_columns,
)
from serving.engines import Engine, EngineInputError, EngineUnavailable
from serving.models import PredictionLog, RejectionMinute

logger = logging.getLogger(__name__)


def _engine(version: ModelVersion) -> Engine:
    engine = cache.engine_for(version)
    if settings.MLPLATFORM_PRELOAD:
        _warm_once(version, engine)
    return engine


def validated_input() -> AbstractContextManager[None]:
    """Skip scikit-learn's own finiteness and parameter re-checks during a predict.

    `serving.codecs` has already refused NaN/Infinity and wrong types, and a ready version's
    parameters were validated when it was fitted; the re-checks cost about a tenth of a one-row
    predict. (Model runners apply the same settings on their side.)
    """
    return sklearn.config_context(assume_finite=True, skip_parameter_validation=True)


def estimator_outputs(
    engine: Engine, matrix: Matrix, outputs: Sequence[str], *, version: ModelVersion
) -> dict[str, Any]:
    """`predict` and/or `predict_proba` on an already validated matrix, as arrays (real-time
    predictions and batch blocks alike).

    Raises:
        InputError: the model refused the values.
        EngineUnavailable: the version's runner crashed or timed out (counted towards
            quarantine).
    """
    try:
        return engine.outputs(matrix, outputs)
    except runners.RunnerInputError as exc:
        raise InputError(f"The model rejected the input: {exc}") from exc
    except runners.RunnerUnavailable as exc:
        if exc.failure:
            registry_services.version_runner_failed(version_id=version.pk, reason=str(exc))
        raise EngineUnavailable(str(exc)) from exc
    except EngineInputError as exc:
        raise InputError(f"The model rejected the input: {exc}") from exc


def prediction_make(
    *, version: ModelVersion, matrix: Matrix, outputs: Sequence[str]
) -> PredictionResult:
    """Predict with a ready version on an already validated matrix.

    Raises:
        InputError: predict_proba asked of a model without it, or the model rejected the input.
        EngineUnavailable: the version cannot be served (integrity, runner failure).
    """
    engine = _engine(version)
    wants_proba = "predict_proba" in outputs
    if wants_proba and not engine.has_proba:
        raise InputError(
            f"{version.model.name} version {version.version} "
            f"({version.signature.estimator or 'this model'}) has no predict_proba; "
            "ask for 'predict' only.",
            field="return",
        )
    results = estimator_outputs(engine, matrix, outputs, version=version)
    predictions = probabilities = None
    if "predict" in results:
        predictions = jsonable_column(results["predict"])
    if "predict_proba" in results:
        probabilities = [jsonable_column(row) for row in results["predict_proba"]]
    labels = version.signature.classes
    classes = list(labels) if wants_proba and labels is not None else None
    return PredictionResult(predictions=predictions, probabilities=probabilities, classes=classes)


def request_to_matrix(*, version: ModelVersion, decoded: DecodedRequest) -> Matrix:
    """Validate a decoded request against the version's signature (filling features from the
    online store when the version has a feature service).

    Raises:
        InputError: naming the column and row at fault.
    """
    decoded, keys = enrichment.request_enrich(version=version, decoded=decoded)
    return columns_to_matrix(
        decoded.columns,
        version.signature,
        n_rows=decoded.n_rows,
        allow_extra=keys,
        records=decoded.records,
    )


# --- warming ------------------------------------------------------------------------------

_warmed: set[str] = set()
_warm_lock = threading.Lock()
_preloaded = False


def _warm_rows(version: ModelVersion) -> DecodedRequest:
    names = version.signature.column_names
    example = version.input_example
    if isinstance(example, list) and example and isinstance(example[0], dict):
        try:
            columns, n_rows = records_to_columns(example[:1], field="input_example")
            return DecodedRequest(columns=columns, n_rows=n_rows)
        except InputError:
            pass
    dtypes = version.signature.dtypes
    return DecodedRequest(
        columns={name: ["" if dtypes[name] == "string" else 0.0] for name in names}, n_rows=1
    )


def _warm_once(version: ModelVersion, engine: Engine) -> None:
    if version.sha256 in _warmed:
        return
    with _warm_lock:
        if version.sha256 in _warmed:
            return
        try:
            matrix = columns_to_matrix(
                _warm_rows(version).columns, version.signature, n_rows=1, allow_extra=True
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                estimator_outputs(engine, matrix, ["predict"], version=version)
        except (ValueError, TypeError, KeyError, InputError, EngineUnavailable) as exc:
            # A failed warm-up is not fatal: the first real request will show the real error.
            logger.warning("warm-up predict of %s failed: %s", version, exc)
        _warmed.add(version.sha256)


def version_warm(*, version: ModelVersion) -> None:
    """Load a version into this process's cache and run one predict, so its first request is
    as fast as the rest."""
    _warm_once(version, cache.engine_for(version))


def preload_once() -> None:
    """Warm every version named by MLPLATFORM_PRELOAD aliases (e.g. `production`), once per
    process, before that process serves its first prediction."""
    global _preloaded
    if _preloaded or not settings.MLPLATFORM_PRELOAD:
        return
    with _warm_lock:
        if _preloaded:
            return
        _preloaded = True
    aliases = list(settings.MLPLATFORM_PRELOAD)
    links = ModelAlias.objects.select_related("version__model").filter(
        alias__in=aliases, version__status=ModelVersion.Status.READY
    )
    for link in links:
        try:
            version_warm(version=link.version)
        except EngineUnavailable as exc:
            logger.warning("could not preload %s: %s", link.version, exc)


# --- prediction log -------------------------------------------------------------------------


def request_id_for(header_value: str | None) -> str:
    """The client's X-Request-ID when it is sane, else a fresh one (128 random bits in hex, as
    `uuid4().hex` gives without building the UUID)."""
    if header_value and len(header_value) <= 64 and header_value.isprintable():
        return header_value
    return os.urandom(16).hex()


def prediction_log(
    *,
    version: ModelVersion,
    protocol: str,
    request_id: str,
    decoded: DecodedRequest,
    result: PredictionResult,
    started: float,
    role: str = "primary",
    matrix: Matrix | None = None,
) -> bool:
    """Record a prediction off the request path when its model's sample rate draws it (see
    serving.predictionlog). Returns whether it was sampled (its shadows' predictions are logged
    alike, so they join). `matrix`, what the model received, holds served features."""
    if not predictionlog.sampled(version):
        return False
    prediction_log_write(
        version=version,
        protocol=protocol,
        request_id=request_id,
        decoded=decoded,
        result=result,
        latency_ms=(time.perf_counter() - started) * 1000.0,
        role=role,
        matrix=matrix,
    )
    return True


def prediction_log_write(
    *,
    version: ModelVersion,
    protocol: str,
    request_id: str,
    decoded: DecodedRequest,
    result: PredictionResult,
    latency_ms: float,
    role: str,
    matrix: Matrix | None = None,
) -> None:
    """Queue one prediction log entry, sampled or not (a shadow's follows its caller's); the
    writer converts it, off the request path."""
    predictionlog.enqueue(
        predictionlog.entry_make(
            version=version,
            protocol=protocol,
            role=role,
            request_id=request_id,
            columns=decoded.columns,
            n_rows=decoded.n_rows,
            matrix=matrix,
            result=result,
            latency_ms=latency_ms,
        )
    )


def prediction_log_expire(*, now: datetime | None = None) -> dict[str, int]:
    """Delete the prediction log older than MLPLATFORM_LOG_RETENTION_DAYS: its Parquet
    partitions (whole UTC hours), its database rows and the rejection counts. Returns how many
    of each were deleted."""
    before = (now or timezone.now()) - timedelta(days=float(settings.MLPLATFORM_LOG_RETENTION_DAYS))
    files = predictionlog.partitions_expire(before=before)
    rows, _ = PredictionLog.objects.filter(created_at__lt=before).delete()
    rejections, _ = RejectionMinute.objects.filter(minute__lt=before).delete()
    return {"partitions": files, "rows": rows, "rejections": rejections}
