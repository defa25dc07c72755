"""Shadow versions: they score copies of an alias's requests off the request path.

Once the caller's answer is computed, `submit` puts a copy of the request (the decoded columns,
the answer the caller got, the request id) on a bounded in-process queue
(MLPLATFORM_SHADOW_QUEUE_SIZE copies, 1000 by default) and returns at once; when the queue is
full the copy is dropped and counted (`mlplatform_shadow_drops_total`, and the alias's figures).

A background thread per process (started lazily, so each gunicorn worker gets its own) wakes
when copies wait, gathers for GATHER_SECONDS, takes up to BATCH_MAX of them and scores them with
each shadow version on the engines that serve it (ONNX in process, or its sandboxed model
runner): copies with the same columns in one predict (one by one only when that fails, to
charge the error to the copy at fault). The callers' answers are compared with the shadow's:
the share of rows whose label agrees (classifiers; scikit-learn's `accuracy_score`), or the mean
absolute difference (regressors; `mean_absolute_error`). The outcome goes to Prometheus, to the
alias's per-minute figures (serving/trafficstats.py), and — for the copies whose caller was
sampled for the prediction log — to the prediction log, under the caller's request id with
role "shadow".

Nothing here can fail or slow the caller: `submit` never blocks and never raises for a shadow's
sake; a shadow that refuses the input or times out is an error counted for that shadow; and the
thread keeps itself to MLPLATFORM_SHADOW_CPU_SHARE of a core (0.1 by default): after a batch
that kept it busy t seconds it rests t * (1 / share - 1), so on a saturated server the queue
fills and copies are dropped (counted) rather than taking the callers' CPU.
"""

import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from django.conf import settings
from django.db import close_old_connections, connection
from sklearn.metrics import accuracy_score, mean_absolute_error

from mlplatform.errors import ApplicationError
from registry.models import ModelVersion
from serving import metrics, services, trafficstats
from serving.codecs.columns import DecodedRequest, PredictionResult
from serving.traffic import SHADOW, Route

logger = logging.getLogger(__name__)

BATCH_MAX = 256  # copies taken from the queue at once
GATHER_SECONDS = 0.05


@dataclass(frozen=True)
class ShadowCopy:
    route: Route
    decoded: DecodedRequest
    answer: PredictionResult  # what the caller got
    answered_by: ModelVersion
    request_id: str
    protocol: str
    logged: bool  # the caller's request was sampled for the prediction log


_queue: queue.Queue[ShadowCopy] | None = None
_thread: threading.Thread | None = None
_lock = threading.Lock()


def queue_size() -> int:
    """MLPLATFORM_SHADOW_QUEUE_SIZE (at least 1)."""
    return max(1, int(settings.MLPLATFORM_SHADOW_QUEUE_SIZE))


def submit(
    *,
    route: Route,
    decoded: DecodedRequest,
    answer: PredictionResult,
    answered_by: ModelVersion,
    request_id: str,
    protocol: str,
    logged: bool,
) -> None:
    """Queue a copy of a request for the route's shadows (nothing when it has none); a full
    queue drops the copy and counts it."""
    if not route.shadows or route.alias_id is None:
        return
    pending = _ensure_worker()
    copy = ShadowCopy(route, decoded, answer, answered_by, request_id, protocol, logged)
    try:
        pending.put_nowait(copy)
    except queue.Full:
        for shadow in route.shadows:
            metrics.record_shadow_drop(model=shadow.model.name, version=str(shadow.version))
            trafficstats.record(
                alias_id=route.alias_id, version_id=shadow.pk, role=SHADOW, dropped=True
            )


def wait_idle(timeout: float = 10.0) -> bool:
    """Wait until every queued copy is scored, then write the figures gathered so far (for
    management commands and tests). Returns False if the queue did not empty in time."""
    pending = _queue
    deadline = time.monotonic() + timeout
    while pending is not None and pending.unfinished_tasks:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    trafficstats.flush()
    return True


def _ensure_worker() -> queue.Queue[ShadowCopy]:
    global _queue, _thread
    pending = _queue
    if pending is not None and _thread is not None and _thread.is_alive():
        pending.maxsize = queue_size()  # read by every put: a changed setting applies at once
        return pending
    with _lock:
        if _queue is None:
            _queue = queue.Queue(maxsize=queue_size())
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, args=(_queue,), name="shadows", daemon=True)
            _thread.start()
        return _queue


def cpu_share() -> float:
    """MLPLATFORM_SHADOW_CPU_SHARE: the share of one core the shadow thread of a process may
    keep busy (MLPLATFORM_SHADOW_CPU_SHARE); 1 or more: no limit."""
    return min(max(float(settings.MLPLATFORM_SHADOW_CPU_SHARE), 0.01), 1.0)


def _run(pending: queue.Queue[ShadowCopy]) -> None:
    while True:
        batch = [pending.get()]
        # Gather for a moment: one wake-up per batch, not per request (each wake-up takes the
        # interpreter lock from the request threads).
        time.sleep(GATHER_SECONDS)
        busy_from = time.thread_time()
        while len(batch) < BATCH_MAX:
            try:
                batch.append(pending.get_nowait())
            except queue.Empty:
                break
        try:
            close_old_connections()
            score(batch)
        except Exception:  # the worker must outlive any one batch; logged in full
            logger.exception("shadow scoring of %d request copies failed", len(batch))
        finally:
            connection.close()  # this thread's connection is not kept between batches
            for _ in batch:
                pending.task_done()
        # The shadow's work must not take the callers' CPU: after a batch that kept this thread
        # busy for t seconds, it rests t * (1 / share - 1) (the queue fills meanwhile, and
        # copies beyond it are dropped and counted).
        share = cpu_share()
        if share < 1.0:
            time.sleep((time.thread_time() - busy_from) * (1.0 / share - 1.0))


def score(batch: list[ShadowCopy]) -> None:
    """Score each copy with each of its route's shadows and record the outcomes."""
    work: dict[tuple[int, int, tuple[str, ...]], list[ShadowCopy]] = {}
    shadows: dict[tuple[int, int, tuple[str, ...]], ModelVersion] = {}
    for copy in batch:
        for shadow in copy.route.shadows:
            key = (copy.route.alias_id or 0, shadow.pk, tuple(copy.decoded.columns))
            work.setdefault(key, []).append(copy)
            shadows[key] = shadow
    for key, copies in work.items():
        _score_together(shadows[key], copies)


def _score_together(shadow: ModelVersion, copies: list[ShadowCopy]) -> None:
    """One predict for copies with the same columns, recorded together; one by one when that
    fails (to charge the error to the copy at fault)."""
    merged = _merge([copy.decoded for copy in copies]) if len(copies) > 1 else copies[0].decoded
    if merged is not None:
        started = time.perf_counter()
        try:
            result = _predict(shadow, merged)
        except ApplicationError as exc:
            if len(copies) == 1:
                _record_error(shadow, copies[0], str(exc))
                return
        else:
            _record(shadow, copies, result.predictions, time.perf_counter() - started)
            return
    for copy in copies:
        started = time.perf_counter()
        try:
            result = _predict(shadow, copy.decoded)
        except ApplicationError as exc:
            _record_error(shadow, copy, str(exc))
            continue
        _record(shadow, [copy], result.predictions, time.perf_counter() - started)


def _predict(shadow: ModelVersion, decoded: DecodedRequest) -> PredictionResult:
    asked = replace(decoded, outputs=["predict"])
    matrix = services.request_to_matrix(version=shadow, decoded=asked)
    return services.prediction_make(version=shadow, matrix=matrix, outputs=["predict"])


def _merge(parts: list[DecodedRequest]) -> DecodedRequest | None:
    """The copies' rows as one request (None when their columns cannot be joined as they are)."""
    columns: dict[str, Any] = {}
    for name in parts[0].columns:
        values = [part.columns[name] for part in parts]
        if all(isinstance(v, np.ndarray) for v in values):
            columns[name] = np.concatenate(values)
        elif all(isinstance(v, list) for v in values):
            columns[name] = [item for v in values for item in v]
        else:
            return None
    records = None
    if all(part.records is not None for part in parts):
        # Records let an all-numeric request become a matrix in one conversion.
        records = [record for part in parts for record in part.records or []]
    return DecodedRequest(
        columns=columns, n_rows=sum(part.n_rows for part in parts), records=records
    )


def _labels(answer: PredictionResult) -> list[Any] | None:
    """The caller's predicted labels (from its probabilities when it asked only for those)."""
    if answer.predictions is not None:
        return answer.predictions
    if answer.probabilities is not None and answer.classes:
        return [answer.classes[int(np.argmax(row))] for row in answer.probabilities]
    return None


def compare(
    *, answer: list[Any], shadow: list[Any], classifier: bool
) -> tuple[int, int, float, bool]:
    """(rows compared, rows whose labels agree, summed absolute difference, compared as labels)
    of two answers. Rows where either side has no value (a model's NaN) are left out."""
    pairs = [
        (a, b) for a, b in zip(answer, shadow, strict=False) if a is not None and b is not None
    ]
    if not pairs:
        return 0, 0, 0.0, classifier
    left = [a for a, _ in pairs]
    right = [b for _, b in pairs]
    if classifier or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in left + right
    ):
        agreed = accuracy_score([str(v) for v in left], [str(v) for v in right], normalize=False)
        return len(pairs), int(agreed), 0.0, True
    return len(pairs), 0, float(mean_absolute_error(left, right)) * len(pairs), False


def _record(
    shadow: ModelVersion, copies: list[ShadowCopy], predictions: list[Any] | None, seconds: float
) -> None:
    """The outcome of copies scored in one predict (`seconds` shared among them): compared with
    the answers their callers got, counted, and logged for the copies whose caller was."""
    classifier = shadow.signature.task == "classification"
    answers: list[Any] = []
    for copy in copies:
        labels = _labels(copy.answer)
        answers += labels if labels is not None else [None] * copy.decoded.n_rows
    compared, agreed, abs_diff, as_labels = compare(
        answer=answers, shadow=predictions or [], classifier=classifier
    )
    numeric = bool(compared) and not as_labels
    each = seconds / len(copies)
    metrics.record_shadow(
        model=shadow.model.name,
        version=str(shadow.version),
        copies=len(copies),
        seconds=each,
        agreement=agreed / compared if compared and not numeric else None,
        abs_difference=abs_diff / compared if numeric else None,
    )
    trafficstats.record(
        alias_id=copies[0].route.alias_id or 0,
        version_id=shadow.pk,
        role=SHADOW,
        requests=len(copies),
        rows=len(answers),
        latency_ms=each * 1000.0,
        compared_rows=compared,
        agreed_rows=agreed,
        abs_diff_sum=abs_diff,
    )
    offset = 0
    for copy in copies:
        n = copy.decoded.n_rows
        if copy.logged:
            services.prediction_log_write(
                version=shadow,
                protocol=copy.protocol,
                request_id=copy.request_id,
                decoded=copy.decoded,
                result=PredictionResult((predictions or [])[offset : offset + n], None, None),
                latency_ms=each * 1000.0,
                role=SHADOW,
            )
        offset += n


def _record_error(shadow: ModelVersion, copy: ShadowCopy, reason: str) -> None:
    logger.info("shadow %s could not score request %s: %s", shadow, copy.request_id, reason)
    metrics.record_shadow(model=shadow.model.name, version=str(shadow.version), ok=False)
    trafficstats.record(
        alias_id=copy.route.alias_id or 0,
        version_id=shadow.pk,
        role=SHADOW,
        ok=False,
        rows=copy.decoded.n_rows,
    )
