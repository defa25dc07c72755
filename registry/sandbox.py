"""The validation load, run as `python -m registry.sandbox` in a child process.

Even after the static scan, loading an artifact runs library code on attacker-chosen data, so it
happens here: a separate process with an address-space and CPU-time limit, a wall-clock timeout
enforced by the parent, an environment with no secrets (no database URL, broker URL, secret key
or cloud credentials) and no Django. It reads one JSON request on stdin, loads the artifact
through `registry.artifacts` (sha256 re-checked), infers the signature, runs a smoke prediction
and prints one JSON result line prefixed with RESULT_MARK.

The parent side is `sandbox_run`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULT_MARK = "MLPLATFORM-SANDBOX-RESULT "
# Only these variables reach the child: enough to run Python and keep BLAS single-threaded.
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME")
SINGLE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
}


class SandboxError(Exception):
    """The child failed, timed out or ran out of memory; the message is for people."""


def sandbox_env() -> dict[str, str]:
    env = {key: os.environ[key] for key in PASSED_ENV if key in os.environ}
    env.update(SINGLE_THREAD)
    return env


def sandbox_run(
    *,
    path: Path,
    sha256: str,
    fmt: str,
    trusted_types: list[str],
    input_example: Any,
    timeout: float,
    memory_mb: int,
) -> dict[str, Any]:
    """Run the validation load in a child process and return its result dictionary."""
    from django.conf import settings

    request = {
        "path": str(path),
        "sha256": sha256,
        "format": fmt,
        "trusted_types": trusted_types,
        "input_example": input_example,
        "memory_mb": memory_mb,
        "cpu_seconds": max(1, int(timeout)),
    }
    try:
        completed = subprocess.run(
            [sys.executable, "-E", "-s", "-m", "registry.sandbox"],
            input=json.dumps(request).encode(),
            capture_output=True,
            cwd=settings.BASE_DIR,
            env=sandbox_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(
            f"Loading the model took longer than {timeout:g} s "
            "(MLPLATFORM_SANDBOX_TIMEOUT_SECONDS); it was stopped."
        ) from exc
    for line in reversed(completed.stdout.decode(errors="replace").splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    stderr = completed.stderr.decode(errors="replace").strip().splitlines()
    tail = stderr[-1] if stderr else ""
    if completed.returncode < 0 or "MemoryError" in tail:
        raise SandboxError(
            f"Loading the model was stopped (exit {completed.returncode}): it used more than "
            f"{memory_mb} MB of memory or its CPU-time limit. {tail}".strip()
        )
    raise SandboxError(f"Loading the model failed (exit {completed.returncode}). {tail}".strip())


# --- child side ----------------------------------------------------------------------------------


def _limit(memory_mb: int, cpu_seconds: int) -> None:
    import resource

    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _frame(rows: list[dict[str, Any]], signature: dict[str, Any]) -> Any:
    import numpy as np
    import pandas as pd

    columns = [column["name"] for column in signature["inputs"]]
    if signature.get("named_columns"):
        frame = pd.DataFrame(rows)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"the input example lacks the columns {', '.join(missing)}")
        return frame[columns]
    return np.asarray([[row.get(c, 0) for c in columns] for row in rows], dtype=float)


def _zero_rows(signature: dict[str, Any]) -> list[dict[str, Any]]:
    """One row of zeros; a categorical column gets its first learned category instead."""
    zero = {"string": "", "bool": False, "int64": 0}
    row = {}
    for column in signature["inputs"]:
        categories = column.get("categories")
        row[column["name"]] = categories[0] if categories else zero.get(column["dtype"], 0.0)
    return [row]


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import version

    names = {"sklearn": "scikit-learn", "numpy": "numpy", "scipy": "scipy", "joblib": "joblib"}
    found = {key: version(dist) for key, dist in names.items()}
    found["skops"] = version("skops")  # read from metadata: importing skops is slow
    found["python"] = platform.python_version()
    return found


def _validate(request: dict[str, Any]) -> dict[str, Any]:
    from registry import artifacts
    from registry.signature import signature_infer, to_jsonable

    with open(request["path"], "rb") as stream:
        estimator = artifacts.load_verified(
            stream=stream,
            expected_sha256=request["sha256"],
            fmt=request["format"],
            trusted_types=request["trusted_types"],
        )
    trained_with = artifacts.trained_sklearn_version()
    example = request.get("input_example")
    rows = example if isinstance(example, list) and example else None
    signature = signature_infer(estimator, input_example=rows)
    if not hasattr(estimator, "predict"):
        return {"ok": False, "error": f"{signature['estimator']} has no predict method."}
    smoke_rows = rows or _zero_rows(signature)
    try:
        matrix = _frame(smoke_rows, signature)
        prediction = estimator.predict(matrix)
        if signature["has_predict_proba"]:
            estimator.predict_proba(matrix)
    except Exception as exc:
        source = "the input example" if rows else "a row of zeros (give an input example)"
        return {
            "ok": False,
            "error": f"The smoke prediction on {source} failed: {type(exc).__name__}: {exc}",
        }
    return {
        "ok": True,
        "signature": signature,
        "trained_with_sklearn": trained_with,
        "library_versions": _versions(),
        "smoke_prediction": to_jsonable(prediction[:3]),
    }


def main() -> None:
    request = json.loads(sys.stdin.read())
    _limit(int(request["memory_mb"]), int(request["cpu_seconds"]))
    try:
        result = _validate(request)
    except MemoryError:
        result = {"ok": False, "error": "Loading the model ran out of memory."}
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write("\n" + RESULT_MARK + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
