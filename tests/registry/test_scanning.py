"""The static scan: every legitimate estimator/format passes, every attack is refused unrun."""

import pickle
from pathlib import Path
from typing import Any

import joblib
import pytest
import skops.io as sio
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from registry.scanning import ScanError, artifact_scan
from tests.registry.conftest import (
    FORMAT_LABELS,
    KINDS,
    Eval,
    Exec,
    OsSystem,
    Popen,
    dunder_import,
    getattr_chain,
    import_call,
)

pytestmark = pytest.mark.django_db


def _fmt(label: str) -> str:
    return label.split("-")[0]


@pytest.mark.parametrize("label", FORMAT_LABELS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_estimator_in_every_format_passes_the_scan(
    kind: str, label: str, estimators: dict[str, Any], write_artifact: Any
) -> None:
    # given a fitted estimator saved the way a data scientist would save it
    path = write_artifact(estimators[kind], label)

    # when it is scanned
    report = artifact_scan(path=path, fmt=_fmt(label))

    # then it passes, and the joblib container was undone where there was one
    assert report.globals or (label == "skops" and report.container == "zip")
    if label.startswith("joblib-"):
        assert report.container == label.split("-")[1]
        assert report.arrays > 0


ATTACKS = {"os.system": OsSystem, "eval": Eval, "exec": Exec, "subprocess.Popen": Popen}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_reduce_attacks_are_refused_at_every_protocol(
    attack: str, protocol: int, marker: Path, tmp_path: Path
) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(ATTACKS[attack](marker), protocol=protocol))

    with pytest.raises(ScanError, match="not on the allowlist"):
        artifact_scan(path=path, fmt="pickle")
    assert not marker.exists()


@pytest.mark.parametrize("builder", [getattr_chain, import_call, dunder_import])
def test_hand_written_import_chains_are_refused(builder: Any, marker: Path, tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(builder(marker))

    with pytest.raises(ScanError) as caught:
        artifact_scan(path=path, fmt="pickle")
    assert "os" in str(caught.value) or "builtins" in str(caught.value)
    assert not marker.exists()


@pytest.mark.parametrize("compress", [0, ("gzip", 3), ("lz4", 3), ("zlib", 3)])
def test_payload_hidden_in_a_fitted_pipeline_in_joblib_is_refused(
    compress: Any, estimators: dict[str, Any], marker: Path, tmp_path: Path
) -> None:
    # given a real fitted pipeline with a payload tucked into one step's attributes
    pipeline = estimators["pipeline"]
    pipeline.steps[0][1].hidden = OsSystem(marker)
    path = tmp_path / "pipeline.joblib"
    try:
        joblib.dump(pipeline, path, compress=compress)
    finally:
        del pipeline.steps[0][1].hidden

    with pytest.raises(ScanError, match=r"posix\.system"):
        artifact_scan(path=path, fmt="joblib")
    assert not marker.exists()


def test_a_function_transformer_calling_os_system_is_refused(tmp_path: Path) -> None:
    import os

    pipeline = make_pipeline(FunctionTransformer(func=os.system))
    path = tmp_path / "fn.joblib"
    joblib.dump(pipeline, path)

    with pytest.raises(ScanError, match=r"posix\.system"):
        artifact_scan(path=path, fmt="joblib")


def test_skops_file_needing_an_unsafe_function_is_refused(tmp_path: Path) -> None:
    import os

    path = tmp_path / "fn.skops"
    sio.dump(FunctionTransformer(func=os.system), path)

    with pytest.raises(ScanError, match="system"):
        artifact_scan(path=path, fmt="skops")


def test_numpy_file_loaders_are_refused_though_numpy_is_allowed(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "loader.pkl"
    path.write_bytes(pickle.dumps(np.load, protocol=4))

    with pytest.raises(ScanError, match="reads or writes files"):
        artifact_scan(path=path, fmt="pickle")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n garbage", "not a pickle"),
        (b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x05hel", "truncated|readable"),
        (b"cos\nsystem\n(S'ls'\ntR.", "protocols 0 and 1"),
    ],
)
def test_garbage_empty_and_truncated_files_are_refused(
    data: bytes, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(data)

    with pytest.raises(ScanError, match=message):
        artifact_scan(path=path, fmt="pickle")


def test_truncated_joblib_array_is_refused(estimators: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "cut.joblib"
    joblib.dump(estimators["random_forest"], path)
    path.write_bytes(path.read_bytes()[:-200])

    with pytest.raises(ScanError, match=r"truncated|readable"):
        artifact_scan(path=path, fmt="joblib")


def test_zip_bomb_dressed_as_skops_is_refused(tmp_path: Path) -> None:
    from tests.registry.conftest import zip_bomb

    path = tmp_path / "bomb.skops"
    path.write_bytes(zip_bomb())

    with pytest.raises(ScanError, match=r"zip bomb|expands"):
        artifact_scan(path=path, fmt="skops")


def test_trusted_modules_setting_extends_the_allowlist(settings: Any, tmp_path: Path) -> None:
    import collections

    path = tmp_path / "counter.pkl"
    path.write_bytes(pickle.dumps(collections.Counter(a=1), protocol=4))
    with pytest.raises(ScanError, match=r"collections\.Counter"):
        artifact_scan(path=path, fmt="pickle")

    settings.MLPLATFORM_TRUSTED_MODULES = ["collections"]
    assert artifact_scan(path=path, fmt="pickle").globals == {"collections.Counter"}


@pytest.mark.parametrize("compress", [("zlib", 1), ("gzip", 1), ("lz4", 1)])
def test_large_compressed_arrays_are_walked_in_blocks(compress: Any, tmp_path: Path) -> None:
    import numpy as np

    # given arrays far larger than one read block, compressed
    path = tmp_path / "big.joblib"
    joblib.dump(
        {"a": np.random.default_rng(0).random(1_500_000), "b": np.arange(10)},
        path,
        compress=compress,
    )

    report = artifact_scan(path=path, fmt="joblib")

    assert report.arrays == 2
    assert report.expanded_bytes > 12_000_000


def test_an_impossible_declared_length_is_refused_without_allocating_it(tmp_path: Path) -> None:
    import struct

    # BINBYTES8 claiming 2**50 bytes, followed by almost nothing
    path = tmp_path / "huge.pkl"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2**50) + b"abc")

    with pytest.raises(ScanError, match=r"readable|truncated"):
        artifact_scan(path=path, fmt="pickle")


@pytest.mark.parametrize("target", ["sklearn.set_config", "numpy.seterr", "numpy.random.seed"])
def test_calls_that_change_process_wide_state_are_refused(target: str, tmp_path: Path) -> None:
    module, _, name = target.rpartition(".")
    path = tmp_path / "state.pkl"
    path.write_bytes(b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n)R.")

    with pytest.raises(ScanError, match="process-wide settings"):
        artifact_scan(path=path, fmt="pickle")


def test_oversized_skops_schema_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import zipfile

    from registry import scanning

    monkeypatch.setattr(scanning, "MAX_SKOPS_SCHEMA_BYTES", 1000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", "{" + " " * 5000 + "}")
    path = tmp_path / "big.skops"
    path.write_bytes(buffer.getvalue())

    with pytest.raises(ScanError, match="schema"):
        artifact_scan(path=path, fmt="skops")
