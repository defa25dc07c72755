"""Model registry: what the safety checks cost next to a bare `joblib.load` of the same file.

For a random forest of about BENCH_REGISTRY_MB megabytes (default 50) saved with joblib, measured
in this run:
1. baseline: `joblib.load` of the file, in process, no checks;
2. the static scan alone (opcode walk + array skipping), as MB/s and as a ratio to the baseline;
3. upload (size cap, magic bytes, streaming sha256, store) and validation (copy + sha256 check,
   scan, sandboxed load in a child process, signature, smoke predict) — the worker runs exactly
   `version_validate`, so upload-to-ready here excludes only the broker hop (~0.2 s);
4. the same for the zlib-compressed file (the scan has to inflate it first).
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench-registry"


def _setup() -> None:
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    (VAR / "broker" / "queue").mkdir(parents=True)
    (VAR / "broker" / "control").mkdir(parents=True)
    os.environ["MLPLATFORM_VAR_DIR"] = str(VAR)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings.local")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _forest(target_mb: float, path: Path, compress: Any = 0) -> tuple[Any, float]:
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=20_000, n_features=20, random_state=0)
    probe = RandomForestClassifier(n_estimators=2, random_state=0, n_jobs=2).fit(X, y)
    joblib.dump(probe, path)
    per_tree = path.stat().st_size / 2
    trees = max(2, int(target_mb * 1024 * 1024 / per_tree))
    forest = RandomForestClassifier(n_estimators=trees, random_state=0, n_jobs=2).fit(X, y)
    joblib.dump(forest, path, compress=compress)
    return forest, path.stat().st_size / 1024 / 1024


def _timed(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _one(label: str, path: Path, size_mb: float, baseline: float) -> None:
    from django.core.files import File

    from registry import services
    from registry.models import RegisteredModel
    from registry.scanning import artifact_scan

    scan = _timed(lambda: artifact_scan(path=path, fmt="joblib"))
    model = RegisteredModel.objects.filter(name="bench").first() or services.model_create(
        name="bench"
    )
    start = time.perf_counter()
    with path.open("rb") as stream:
        version = services.version_upload(model=model, file=File(stream, name=path.name), user=None)
    uploaded = time.perf_counter() - start
    version = services.version_validate(version_id=version.pk)
    ready = time.perf_counter() - start
    assert version.status == "ready", version.status_message
    print(f"[{label}] file {size_mb:.1f} MB")
    rate = size_mb / scan
    print(f"  static scan          {scan:7.3f} s  {rate:7.1f} MB/s  ({scan / baseline:.2f}x load)")
    print(f"  upload (no decode)   {uploaded:7.3f} s  ({uploaded / baseline:.2f}x load)")
    print(f"  upload → ready       {ready:7.3f} s  ({ready / baseline:.2f}x load)")


def main() -> None:
    _setup()
    import joblib

    from registry.artifacts import load_bytes

    def bare_load(path: Path) -> Any:
        # The baseline is what joblib.load costs, taken through the one deserialising module.
        return load_bytes(path.read_bytes(), fmt="joblib")

    target = float(os.environ.get("BENCH_REGISTRY_MB", "50"))
    tmp = Path(tempfile.mkdtemp(dir=VAR))
    plain = tmp / "forest.joblib"
    _forest_obj, size_mb = _forest(target, plain)
    baseline = _timed(lambda: bare_load(plain))
    print(f"baseline: joblib.load of a {size_mb:.1f} MB random forest: {baseline:.3f} s")
    _one("joblib, uncompressed", plain, size_mb, baseline)

    packed = tmp / "forest-z.joblib"
    joblib.dump(_forest_obj, packed, compress=("zlib", 3))
    packed_mb = packed.stat().st_size / 1024 / 1024
    packed_base = _timed(lambda: bare_load(packed))
    print(f"baseline: joblib.load of the zlib file ({packed_mb:.1f} MB): {packed_base:.3f} s")
    _one("joblib, zlib", packed, packed_mb, packed_base)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
