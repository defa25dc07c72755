"""Scoring an evaluation dataset with a version and measuring it.

The dataset's Parquet file is read in blocks; each block is checked and turned into the
estimator's input by serving's decoder (`frame_to_matrix`) and scored by the engine serving
uses (`serving.cache.engine_for`: the ONNX graph in onnxruntime, or the sandboxed runner), so an
evaluation measures exactly what production would answer. Metrics come from scikit-learn's own
functions; per-row latency from a few hundred single-row predictions on the same engine.
"""

import math
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from django.core.files.storage import default_storage
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from mlplatform.errors import ApplicationError
from registry.models import ModelVersion
from serving import cache
from serving.codecs.columns import InputError, frame_to_matrix
from serving.engines import EngineUnavailable
from serving.services import estimator_outputs

BLOCK_ROWS = 50_000
LATENCY_SAMPLES = 300
MAX_CURVE_POINTS = 200
MAX_SCATTER_POINTS = 500
RESIDUAL_BINS = 30


@dataclass
class Measured:
    metrics: dict[str, Any]
    curves: dict[str, Any]
    rows: int
    seconds: float
    notes: list[str] = field(default_factory=list)


@contextmanager
def local_file(name: str) -> Iterator[Path]:
    """A path to a stored file: the file itself on local storage, else a temporary copy."""
    try:
        yield Path(default_storage.path(name))
        return
    except NotImplementedError:
        pass
    with tempfile.NamedTemporaryFile(suffix=".parquet") as copy:
        with default_storage.open(name, "rb") as source:
            for chunk in iter(lambda: source.read(1024 * 1024), b""):
                copy.write(chunk)
        copy.flush()
        yield Path(copy.name)


def task_of(version: ModelVersion) -> str:
    """ "classification" or "regression": what the evaluation measures for this version."""
    signature = version.signature
    if signature.classes is not None or signature.task == "classification":
        return "classification"
    if signature.task in (None, "regression"):
        return "regression"
    raise ApplicationError(
        f"{version.model.name} v{version.version} is a {signature.task} model: evaluations "
        "measure classifiers and regressors only."
    )


def labels_as(values: pd.Series, classes: list[Any]) -> np.ndarray:
    """The label column in the type of the version's classes (labels read from CSV as numbers
    may be the text labels of a classifier, and the other way round)."""
    if classes and isinstance(classes[0], str):
        return values.astype(str).to_numpy()
    if classes and isinstance(classes[0], bool):
        return values.astype(bool).to_numpy()
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().any():
        bad = values[numeric.isna()].iloc[0]
        raise ApplicationError(f"The label column holds {bad!r}, which is not a class label.")
    if classes and all(isinstance(c, int) for c in classes):
        return numeric.astype(np.int64).to_numpy()
    return numeric.to_numpy()


def evaluate(
    *,
    version: ModelVersion,
    path: Path,
    label_column: str,
    progress: Callable[[int, int], None] | None = None,
) -> Measured:
    """Score the dataset at `path` with `version` and measure it.

    Raises:
        ApplicationError: the dataset does not fit the version (a missing column, a bad value,
            a label that is not one of the classes), or the version cannot be served.
    """
    task = task_of(version)
    signature = version.signature
    classes = list(signature.classes or [])
    try:
        engine = cache.engine_for(version)
    except EngineUnavailable as exc:
        raise ApplicationError(f"{version} cannot be loaded: {exc}") from exc
    wants_proba = task == "classification" and signature.has_predict_proba
    outputs = ["predict", "predict_proba"] if wants_proba else ["predict"]
    parquet = pq.ParquetFile(path)
    total = int(parquet.metadata.num_rows)
    if total == 0:
        raise ApplicationError("The evaluation dataset has no rows.")
    present = set(parquet.schema_arrow.names)
    missing = [name for name in signature.column_names if name not in present]
    if missing:
        raise ApplicationError(
            f"The evaluation dataset lacks column(s) {', '.join(missing)} that "
            f"{version.model.name} v{version.version} takes."
        )
    if label_column not in present:
        raise ApplicationError(f"The evaluation dataset lacks its label column {label_column!r}.")
    wanted = list(dict.fromkeys([*signature.column_names, label_column]))
    predictions: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    sample = None
    done = 0
    scoring = 0.0
    started = time.perf_counter()
    for batch in parquet.iter_batches(batch_size=BLOCK_ROWS, columns=wanted):
        frame = batch.to_pandas()
        try:
            matrix = frame_to_matrix(frame, signature, row_offset=done)
            began = time.perf_counter()
            results = estimator_outputs(engine, matrix, outputs, version=version)
            scoring += time.perf_counter() - began
        except InputError as exc:
            row = exc.extra.get("row")
            where = f" (data row {row})" if row is not None else ""
            raise ApplicationError(f"The evaluation dataset: {exc.message}{where}") from exc
        if sample is None:
            sample = frame.head(LATENCY_SAMPLES)
        labels.append(
            labels_as(frame[label_column], classes)
            if task == "classification"
            else _numeric_labels(frame[label_column], label_column)
        )
        predictions.append(np.asarray(results["predict"]))
        if "predict_proba" in results:
            probabilities.append(np.asarray(results["predict_proba"], dtype=np.float64))
        done += len(frame)
        if progress is not None:
            progress(done, total)
    seconds = time.perf_counter() - started
    y_true = np.concatenate(labels)
    y_pred = np.concatenate(predictions)
    proba = np.concatenate(probabilities) if probabilities else None
    if task == "classification":
        measured = classification_metrics(y_true, y_pred, proba, classes)
    else:
        measured = regression_metrics(y_true, y_pred.astype(np.float64))
    measured.metrics["rows_per_second"] = done / scoring if scoring > 0 else None
    measured.metrics.update(_latency(engine, sample, version=version))
    measured.rows = done
    measured.seconds = seconds
    return measured


def _numeric_labels(values: pd.Series, label_column: str) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().any():
        raise ApplicationError(
            f"The label column {label_column!r} of a regression dataset must hold numbers "
            "and no empty cells."
        )
    return numeric.to_numpy(dtype=np.float64)


def _latency(engine: Any, sample: pd.DataFrame | None, *, version: ModelVersion) -> dict[str, Any]:
    """p50 and p95 of single-row predictions (the engine warmed first), in milliseconds."""
    if sample is None or sample.empty:
        return {"p50_latency_ms": None, "p95_latency_ms": None}
    rows = [sample.iloc[[i]] for i in range(len(sample))]
    matrices = [frame_to_matrix(row, version.signature) for row in rows]
    estimator_outputs(engine, matrices[0], ["predict"], version=version)
    timings = []
    for matrix in matrices:
        began = time.perf_counter()
        estimator_outputs(engine, matrix, ["predict"], version=version)
        timings.append((time.perf_counter() - began) * 1000)
    return {
        "p50_latency_ms": float(np.percentile(timings, 50)),
        "p95_latency_ms": float(np.percentile(timings, 95)),
        "latency_samples": len(timings),
    }


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: list[Any]
) -> Measured:
    """accuracy, precision, recall, f1 (binary: the positive class is the last of the version's
    classes; more classes: macro average), roc_auc and log_loss from the probabilities, the
    confusion matrix in the class order; ROC and precision-recall curves."""
    unknown = sorted({str(v) for v in np.unique(y_true)} - {str(c) for c in classes})
    if classes and unknown:
        raise ApplicationError(
            f"The label column holds {', '.join(unknown[:5])}, which the model does not know "
            f"(its classes: {', '.join(str(c) for c in classes)})."
        )
    notes: list[str] = []
    binary = len(classes) == 2
    if binary:
        positive = classes[-1]
        averaging: dict[str, Any] = {"average": "binary", "pos_label": positive}
        notes.append(f"precision, recall and f1 of the positive class {positive!r}")
    else:
        averaging = {"average": "macro", "labels": classes}
        notes.append("precision, recall and f1 are macro averages over the classes")
    values: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0, **averaging)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0, **averaging)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0, **averaging)),
        "roc_auc": None,
        "log_loss": None,
        "averaging": "binary" if binary else "macro",
        "positive_class": classes[-1] if binary else None,
        "confusion_matrix": {
            "labels": classes,
            "matrix": skm.confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        },
    }
    curves: dict[str, Any] = {}
    if proba is not None and proba.shape[1] == len(classes):
        present = len(np.unique(y_true))
        values["log_loss"] = _finite(skm.log_loss(y_true, proba, labels=classes))
        if present < 2:
            notes.append("roc_auc is undefined: the labels hold one class only")
        elif binary:
            positive_true = y_true == classes[-1]
            values["roc_auc"] = _finite(skm.roc_auc_score(positive_true, proba[:, 1]))
            curves = _curves(positive_true, proba[:, 1])
        else:
            if present == len(classes):
                values["roc_auc"] = _finite(
                    skm.roc_auc_score(
                        y_true, proba, multi_class="ovr", average="macro", labels=classes
                    )
                )
                notes.append("roc_auc is the one-vs-rest macro average")
            else:
                notes.append("roc_auc is undefined: some classes are absent from the labels")
            onehot = label_binarize(y_true, classes=classes).ravel().astype(bool)
            curves = _curves(onehot, proba.ravel())
            curves["averaging"] = "micro"
    elif proba is None:
        notes.append("roc_auc and log_loss need predict_proba, which this model lacks")
    values["notes"] = notes
    return Measured(metrics=values, curves=curves, rows=len(y_true), seconds=0.0, notes=notes)


def _downsample(points: np.ndarray, limit: int) -> list[int]:
    if len(points) <= limit:
        return list(range(len(points)))
    return sorted(set(np.linspace(0, len(points) - 1, limit).round().astype(int).tolist()))


def _curves(truth: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    fpr, tpr, _ = skm.roc_curve(truth, scores)
    precision, recall, _ = skm.precision_recall_curve(truth, scores)
    keep = _downsample(fpr, MAX_CURVE_POINTS)
    roc = [[float(fpr[i]), float(tpr[i])] for i in keep]
    keep = _downsample(recall, MAX_CURVE_POINTS)
    pr = [[float(recall[i]), float(precision[i])] for i in keep]
    return {"roc": roc, "pr": pr}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> Measured:
    """mae, rmse, r2; predicted against actual (a sample) and a histogram of residuals."""
    values: dict[str, Any] = {
        "mae": _finite(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": _finite(skm.root_mean_squared_error(y_true, y_pred)),
        "r2": _finite(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None,
    }
    rng = np.random.default_rng(0)
    picked = (
        np.sort(rng.choice(len(y_true), MAX_SCATTER_POINTS, replace=False))
        if len(y_true) > MAX_SCATTER_POINTS
        else np.arange(len(y_true))
    )
    residuals = y_pred - y_true
    finite = residuals[np.isfinite(residuals)]
    counts: Any = []
    edges: Any = []
    if len(finite):
        counts, edges = np.histogram(finite, bins=RESIDUAL_BINS)
    curves = {
        "predicted_vs_actual": [[float(y_true[i]), float(y_pred[i])] for i in picked],
        "residuals": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }
    return Measured(metrics=values, curves=curves, rows=len(y_true), seconds=0.0)
