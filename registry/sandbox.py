"""Validation of an untrusted artifact, in a confined child process (`registry.validator`).

The parent (a Celery worker, which holds credentials) never parses the artifact: it copies the
stored bytes into a fresh scratch directory, checks their sha256 and starts this module as a
child with a scrubbed environment, the scratch directory as its working directory, an output
file descriptor for the compiled graph and, where the platform runs as root, an unprivileged
user. The child confines itself (`registry.confinement`: rlimits, no new privileges, Landlock,
seccomp) before it opens the artifact, then (see `registry.validator`):

1. scans it statically (`registry.scanning`: exact types, bounded, imports nothing);
2. loads it (`registry.artifacts`, sha256 re-checked) and checks every tree's arrays
   (`registry.trees`) before anything predicts;
3. infers the signature and runs a smoke prediction on the input example (or a row of zeros);
4. compiles it to ONNX and proves the graph equivalent on probe rows (`registry.compilation`).

It prints one JSON result line prefixed with RESULT_MARK and writes the graph to the inherited
descriptor. The parent enforces the wall-clock timeout and treats everything the child says as
hostile: the graph is checked again (`registry.graphs`) before it is stored.
"""

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from registry import confinement
from registry.graphs import MAX_GRAPH_BYTES

RESULT_MARK = "MLPLATFORM-SANDBOX-RESULT "
CHUNK = 1024 * 1024
MAX_RESULT_BYTES = 16 * 1024 * 1024


class SandboxError(Exception):
    """The child failed, timed out or ran out of memory; the message is for people."""


@dataclass
class SandboxResult:
    """What the child reported, plus the graph it wrote (empty when the model did not compile)."""

    report: dict[str, Any]
    graph: bytes = b""
    protections: dict[str, Any] = field(default_factory=dict)


def _copy_verified(
    open_artifact: Callable[[], AbstractContextManager[IO[bytes]]], target: Path, sha256: str
) -> None:
    digest = hashlib.sha256()
    with open_artifact() as source, target.open("wb") as out:
        for block in iter(lambda: source.read(CHUNK), b""):
            digest.update(block)
            out.write(block)
    if digest.hexdigest() != sha256:
        raise SandboxError("The stored artifact no longer matches the sha256 recorded at upload.")


def _parse(stdout: bytes) -> dict[str, Any] | None:
    for line in reversed(stdout[-MAX_RESULT_BYTES:].decode(errors="replace").splitlines()):
        if line.startswith(RESULT_MARK):
            try:
                result = json.loads(line[len(RESULT_MARK) :])
            except ValueError:
                return None
            return result if isinstance(result, dict) else None
    return None


def sandbox_validate(
    *,
    open_artifact: Callable[[], AbstractContextManager[IO[bytes]]],
    sha256: str,
    fmt: str,
    input_example: Any,
    timeout: float,
    memory_mb: int,
    scan_limits: dict[str, Any],
    tolerance: float,
    allow_unsafe: bool,
) -> SandboxResult:
    """Validate and compile an artifact in a confined child process.

    Raises:
        SandboxError: the bytes changed since upload, or the child crashed, timed out or ran
            out of memory (the message says which, in words for the version page).
    """
    scratch = Path(tempfile.mkdtemp(prefix="mlp-validate-"))
    try:
        artifact = scratch / f"artifact.{fmt}"
        _copy_verified(open_artifact, artifact, sha256)
        demotion = confinement.demotion()
        if "user" in demotion:
            # The demoted child reads its scratch directory and nothing the platform owns.
            for path in (scratch, artifact):
                shutil.chown(path, user=demotion["user"], group=demotion.get("group"))
        graph_path = scratch.with_name(scratch.name + ".onnx")
        request = {
            "artifact": artifact.name,
            "sha256": sha256,
            "format": fmt,
            "input_example": input_example,
            "memory_mb": memory_mb,
            "cpu_seconds": max(1, int(timeout)),
            "scan_limits": scan_limits,
            "tolerance": tolerance,
            "allow_unsafe": allow_unsafe,
            "max_file_bytes": max(MAX_GRAPH_BYTES, int(scan_limits["max_expanded_bytes"])),
        }
        # The child may create no file: it gets one to write the graph into, and an unlinked
        # one to expand a compressed joblib file into for the scan.
        with graph_path.open("wb") as graph_out, tempfile.TemporaryFile() as spill:
            request["graph_fd"] = graph_out.fileno()
            request["spill_fd"] = spill.fileno()
            try:
                completed = subprocess.run(  # noqa: S603 - our own interpreter and module
                    child_command("registry.validator"),
                    input=json.dumps(request).encode(),
                    capture_output=True,
                    cwd=scratch,
                    env=confinement.child_env(),
                    timeout=timeout,
                    pass_fds=(graph_out.fileno(), spill.fileno()),
                    check=False,
                    **demotion,
                )
            except subprocess.TimeoutExpired as exc:
                raise SandboxError(
                    f"Validating the model took longer than {timeout:g} s "
                    "(MLPLATFORM_SANDBOX_TIMEOUT_SECONDS); it was stopped."
                ) from exc
        report = _parse(completed.stdout)
        if report is None:
            stderr = completed.stderr.decode(errors="replace").strip().splitlines()
            tail = stderr[-1][:500] if stderr else ""
            if completed.returncode < 0 or "MemoryError" in tail:
                raise SandboxError(
                    f"Validating the model was stopped (exit {completed.returncode}): it used "
                    f"more than {memory_mb} MB of memory or its CPU-time limit. {tail}".strip()
                )
            raise SandboxError(
                f"Validating the model failed (exit {completed.returncode}). {tail}".strip()
            )
        graph = graph_path.read_bytes() if report.get("engine") == "onnx" else b""
        protections = report.pop("protections", {})
        return SandboxResult(
            report=report,
            graph=graph,
            protections=protections if isinstance(protections, dict) else {},
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.with_name(scratch.name + ".onnx").unlink(missing_ok=True)


def child_command(module: str, *args: str) -> list[str]:
    """Our interpreter running `module.main()` with the project on its path (then `args`),
    isolated from the environment (-E), user site-packages (-s), bytecode writes (-B) and its
    working directory (-P: nothing in the scratch directory is importable)."""
    root = str(Path(__file__).resolve().parent.parent)
    bootstrap = f"import sys; sys.path.insert(0, sys.argv[1]); import {module} as m; m.main()"
    return [sys.executable, "-E", "-s", "-B", "-P", "-c", bootstrap, root, *args]
