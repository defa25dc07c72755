"""The evaluation job against the bare loop a user would write, same file, same run.

A realistic pipeline (imputer, scaler, logistic regression) fitted on a pandas DataFrame with
named columns is stored as the registry stores it (`bench/_registry.py ready_version`: scanned,
validated in the sandbox, compiled to ONNX). A labelled Parquet file of BENCH_EVAL_ROWS rows
(default 1,000,000) and BENCH_EVAL_COLUMNS features (20) is uploaded as the model's evaluation
dataset. Then, best of BENCH_EVAL_REPEAT (2), alternating:
- bare loop: `pd.read_parquet`, `model.predict` and `model.predict_proba` on the whole frame,
  then the same scikit-learn metrics (accuracy, precision, recall, f1, roc_auc, log_loss,
  confusion matrix);
- the evaluation job: an evaluation queued as the API queues one, run by the job's own code
  (`rollout.services.evaluation_run_job`, what a worker runs, here in this process so broker
  latency is not counted): blocks read from the stored Parquet, checked by serving's decoder,
  scored by the serving engine, the same metrics plus curves and 300 single-row latencies.
Goal printed beside the figures: the job within 1.5x the bare loop. The metrics of both must
agree (printed).
"""

import io
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._registry import ready_version

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench-evaluation"
GOAL = 1.5


def _django() -> None:
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    os.environ["MLPLATFORM_VAR_DIR"] = str(VAR)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings.local")
    os.environ["DJANGO_DEBUG"] = "0"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    for folder in getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).values():
        if isinstance(folder, str) and folder.startswith("/"):
            Path(folder).mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)


def _frame(rows: int, columns: int, seed: int) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    names = [f"x{i:02d}" for i in range(columns)]
    frame = pd.DataFrame(rng.normal(size=(rows, columns)).round(4), columns=names)
    signal = frame.iloc[:, 0] + 0.5 * frame.iloc[:, 1] - frame.iloc[:, 2] * frame.iloc[:, 3]
    noise = rng.normal(scale=1.0, size=rows)
    frame["label"] = np.where(signal + noise > 0, "churn", "stay")
    return frame


def _bare(path: Path, model: Any, features: list[str]) -> tuple[float, dict[str, Any]]:
    import pandas as pd
    from sklearn import metrics as skm

    began = time.perf_counter()
    frame = pd.read_parquet(path)
    inputs = frame[features]
    y_true = frame["label"].to_numpy()
    y_pred = model.predict(inputs)
    proba = model.predict_proba(inputs)
    classes = list(model.classes_)
    positive = classes[-1]
    found = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, pos_label=positive),
        "recall": skm.recall_score(y_true, y_pred, pos_label=positive),
        "f1": skm.f1_score(y_true, y_pred, pos_label=positive),
        "roc_auc": skm.roc_auc_score(y_true == positive, proba[:, 1]),
        "log_loss": skm.log_loss(y_true, proba, labels=classes),
        "confusion": skm.confusion_matrix(y_true, y_pred, labels=classes).tolist(),
    }
    return time.perf_counter() - began, found


def _job(version: Any, dataset: Any) -> tuple[float, Any]:
    from rollout import services
    from rollout.models import Evaluation

    queued = services.evaluation_request(version=version, dataset=dataset)
    began = time.perf_counter()
    services.evaluation_run_job(evaluation_id=queued.pk)
    seconds = time.perf_counter() - began
    found = Evaluation.objects.get(pk=queued.pk)
    if found.status != Evaluation.Status.SUCCEEDED:
        raise RuntimeError(f"the evaluation failed: {found.error}")
    return seconds, found


def main() -> None:
    rows = int(os.environ.get("BENCH_EVAL_ROWS", 1_000_000))
    columns = int(os.environ.get("BENCH_EVAL_COLUMNS", 20))
    repeat = max(1, int(os.environ.get("BENCH_EVAL_REPEAT", 2)))
    _django()
    import joblib
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from rollout import services

    train = _frame(20_000, columns, seed=1)
    features = [c for c in train.columns if c != "label"]
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()).fit(
        train[features], train["label"]
    )
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    version = ready_version("bench-evaluation", buffer.getvalue())
    print(f"model: {version.signature.estimator}; engine {version.engine}", flush=True)

    path = VAR / "labelled.parquet"
    _frame(rows, columns, seed=2).to_parquet(path, index=False)
    print(f"dataset: {rows:,} rows x {columns} features, {path.stat().st_size / 1e6:,.0f} MB")
    with path.open("rb") as stream:
        dataset = services.dataset_upload(
            model=version.model, stream=stream, label_column="label", name="bench"
        )

    bare_times, job_times = [], []
    bare_metrics: dict[str, Any] = {}
    evaluation = None
    for _ in range(repeat):
        seconds, bare_metrics = _bare(path, model, features)
        bare_times.append(seconds)
        seconds, evaluation = _job(version, dataset)
        job_times.append(seconds)
    bare, job = min(bare_times), min(job_times)
    assert evaluation is not None
    measured = evaluation.metrics
    print(f"bare loop (read_parquet + predict + predict_proba + metrics): {bare:6.2f} s")
    print(
        f"evaluation job (blocks, decoder, {version.engine} engine, metrics, curves, latency): "
        f"{job:6.2f} s"
    )
    verdict = "met" if job / bare <= GOAL else "NOT met"
    print(f"ratio job / bare: {job / bare:.2f}x (goal <= {GOAL}x: {verdict})")
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        print(f"  {name:10s} job {measured[name]:.6f}   bare {bare_metrics[name]:.6f}")
    same = measured["confusion_matrix"]["matrix"] == bare_metrics["confusion"]
    print(f"  confusion matrices equal: {same}")
    print(
        f"  job: {measured['rows_per_second']:,.0f} rows/s scoring; per-row latency "
        f"p50 {measured['p50_latency_ms']:.3f} ms, p95 {measured['p95_latency_ms']:.3f} ms"
    )
