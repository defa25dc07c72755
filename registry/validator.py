"""The validation child: confine this process, then scan, load, check, smoke-predict and compile
one untrusted artifact. Started by `registry.sandbox.sandbox_validate`, never imported by a web or
worker process (an import-linter contract keeps it so): it is, with `registry.runner`, the only
importer of `registry.artifacts`.

Protocol: one JSON request on stdin; one JSON result line prefixed with RESULT_MARK on stdout;
the compiled graph written to the descriptor named by `graph_fd`.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

from registry.sandbox import RESULT_MARK


def _versions() -> dict[str, str]:
    import platform
    from importlib.metadata import version

    names = {"sklearn": "scikit-learn", "numpy": "numpy", "scipy": "scipy", "joblib": "joblib"}
    found = {key: version(dist) for key, dist in names.items()}
    found["skops"] = version("skops")  # read from metadata: importing skops is slow
    found["python"] = platform.python_version()
    return found


def _scan_limits(values: dict[str, Any]) -> Any:
    from dataclasses import fields

    from registry.scanning import ScanLimits

    known = {f.name for f in fields(ScanLimits)}
    return ScanLimits(**{k: v for k, v in values.items() if k in known})


def _validate(request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    from registry import artifacts, scanning, trees
    from registry.compilation import compile_or_explain, rows_matrix, zero_rows
    from registry.signature import signature_infer, to_jsonable

    path = Path(request["artifact"])
    try:
        with os.fdopen(int(request["spill_fd"]), "w+b") as spill:
            report = scanning.artifact_scan(
                path=path,
                fmt=request["format"],
                limits=_scan_limits(request["scan_limits"]),
                spill=spill,
            )
    except scanning.ScanError as exc:
        return {"ok": False, "error": str(exc), "stage": "scan"}, b""
    with path.open("rb") as stream:
        estimator = artifacts.load_verified(
            stream=stream,
            expected_sha256=request["sha256"],
            fmt=request["format"],
            trusted_types=report.untrusted_types,
        )
    try:
        trees.trees_check(estimator)
    except trees.TreeError as exc:
        return {"ok": False, "error": f"Refused: {exc}", "stage": "trees"}, b""
    trained_with = artifacts.trained_sklearn_version()
    example = request.get("input_example")
    rows = example if isinstance(example, list) and example else None
    signature = signature_infer(estimator, input_example=rows)
    if not hasattr(estimator, "predict"):
        return {"ok": False, "error": f"{signature.estimator} has no predict method."}, b""
    smoke_rows = rows or zero_rows(signature)
    try:
        matrix = rows_matrix(smoke_rows, signature)
        prediction = estimator.predict(matrix)
        if signature.has_predict_proba:
            estimator.predict_proba(matrix)
    except Exception as exc:
        source = "the input example" if rows else "a row of zeros (give an input example)"
        return {
            "ok": False,
            "error": f"The smoke prediction on {source} failed: {type(exc).__name__}: {exc}",
        }, b""
    graph, compilation = compile_or_explain(
        estimator, signature, rows, tolerance=float(request["tolerance"])
    )
    return {
        "ok": True,
        "signature": signature.to_json(),
        "trusted_types": list(report.untrusted_types),
        "scan": {"opcodes": report.opcodes, "types": len(report.globals)},
        "trained_with_sklearn": trained_with,
        "library_versions": _versions(),
        "smoke_prediction": to_jsonable(prediction[:3]),
        "engine": "onnx" if graph else "python",
        "compilation": compilation,
    }, graph


def main() -> None:
    request = json.loads(sys.stdin.read())
    graph_fd = int(request["graph_fd"])
    graph = b""
    protections: dict[str, Any] = {}
    try:
        from registry import confinement

        protections = confinement.confine(
            confinement.Profile(
                scratch=Path.cwd(),
                memory_mb=int(request["memory_mb"]),
                cpu_seconds=int(request["cpu_seconds"]),
                # The graph and the expanded joblib go to inherited regular files, which
                # RLIMIT_FSIZE bounds too.
                max_file_bytes=int(request["max_file_bytes"]),
            ),
            allow_unsafe=bool(request.get("allow_unsafe")),
        )
        result, graph = _validate(request)
    except MemoryError:
        result = {"ok": False, "error": "Validating the model ran out of memory."}
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["protections"] = protections
    with os.fdopen(graph_fd, "wb") as out:
        out.write(graph)
    sys.stdout.write("\n" + RESULT_MARK + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
