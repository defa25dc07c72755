"""The static scan: every legitimate estimator/format passes, every attack is refused unrun.

The attacks on specific classes of bypass are in test_hostile_artifacts.py.
"""

import io
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn
import skops.io as sio
from django.core.management import call_command
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from registry.allowlist import excluded
from registry.scanning import (
    ALLOWLIST_PATH,
    Allowlist,
    ScanError,
    ScanLimits,
    allowlist_default,
    artifact_scan,
    iter_reconstructor_rules,
)
from registry.trees import trees_check
from tests.registry.conftest import (
    FAMILIES,
    FORMAT_LABELS,
    KINDS,
    Eval,
    Exec,
    OsSystem,
    Popen,
    dunder_import,
    getattr_chain,
    import_call,
    skops_archive,
)


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


def test_numpy_file_loaders_are_refused_though_numpy_arrays_are_allowed(tmp_path: Path) -> None:
    import numpy as np

    # given a pickle that only names numpy's file loader
    path = tmp_path / "loader.pkl"
    path.write_bytes(pickle.dumps(np.load, protocol=4))

    # when / then it is refused by name: numpy is not trusted as a package
    with pytest.raises(ScanError, match=r"numpy\.load, which is not on the allowlist"):
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


def test_a_harmless_class_is_refused_when_it_is_not_listed_by_exact_name(tmp_path: Path) -> None:
    import collections

    # given a harmless standard-library class no model is made of
    path = tmp_path / "counter.pkl"
    path.write_bytes(pickle.dumps(collections.Counter(a=1), protocol=4))

    # when / then it is refused, naming it: there is no whole-module trust to widen
    with pytest.raises(ScanError, match=r"collections\.Counter, which is not on the allowlist"):
        artifact_scan(path=path, fmt="pickle")


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

    with pytest.raises(ScanError, match="not on the allowlist"):
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


# --- benign families --------------------------------------------------------------------------


def _load(path: Path, label: str, trusted: list[str]) -> Any:
    if label == "skops":
        return sio.load(path, trusted=trusted)
    if label.startswith("pickle-"):
        return pickle.loads(path.read_bytes())  # noqa: S301 - a file this test wrote
    return joblib.load(path)


@pytest.mark.parametrize("label", FORMAT_LABELS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_people_upload_passes_the_scan_and_the_tree_check(
    family: str, label: str, families: dict[str, tuple[Any, Any]], write_artifact: Any
) -> None:
    # given a fitted model of a common family, saved in one of the accepted formats
    model, rows = families[family]
    path = write_artifact(model, label, name=family)

    # when it is scanned, loaded with the types the scan reports, and checked
    report = artifact_scan(path=path, fmt=_fmt(label))
    loaded = _load(path, label, report.untrusted_types)
    trees_check(loaded)

    # then it predicts exactly as before
    np.testing.assert_array_equal(loaded.predict(rows[:5]), model.predict(rows[:5]))


def test_skops_reports_every_type_the_loader_must_trust(
    families: dict[str, tuple[Any, Any]], write_artifact: Any
) -> None:
    # given a skops file of a model whose tree type skops does not trust by itself
    model, rows = families["decision_tree"]
    path = write_artifact(model, "skops", name="tree")

    # when it is scanned
    report = artifact_scan(path=path, fmt="skops")

    # then the reported types are exactly what skops needs, and all of them are listed classes
    assert "sklearn.tree._tree.Tree" in report.untrusted_types
    assert set(sio.get_untrusted_types(file=path)) <= set(report.untrusted_types)
    listed = allowlist_default()
    assert all(listed.kind(name) is not None for name in report.untrusted_types)
    assert sio.load(path, trusted=report.untrusted_types).predict(rows[:3]).shape == (3,)


# --- limits --------------------------------------------------------------------------------------


def _pickle_file(tmp_path: Path, data: bytes, name: str = "limit.pkl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("limits", "data", "message"),
    [
        (
            ScanLimits(max_opcodes=50),
            b"\x80\x04" + b"N0" * 100 + b"N.",
            r"more than 50 opcodes",
        ),
        (
            ScanLimits(max_memo=10),
            b"\x80\x04N" + b"\x94" * 20 + b".",
            r"more than 10 memo entries",
        ),
        (ScanLimits(max_stack=100), b"\x80\x04" + b"(" * 5000 + b".", r"stack grows past 100"),
        (
            ScanLimits(max_long_bytes=8),
            b"\x80\x04\x8a\x10" + b"\x01" * 16 + b".",
            r"integer longer than 8 bytes",
        ),
    ],
    ids=["opcodes", "memo", "stack", "long"],
)
def test_each_pickle_limit_refuses_with_a_reason(
    limits: ScanLimits, data: bytes, message: str, tmp_path: Path
) -> None:
    path = _pickle_file(tmp_path, data)

    with pytest.raises(ScanError, match=message) as caught:
        artifact_scan(path=path, fmt="pickle", limits=limits)
    assert str(caught.value).startswith("Refused: ")


def test_array_limits_refuse_per_array_and_in_total(tmp_path: Path) -> None:
    # given two real arrays of 1000 elements each
    path = tmp_path / "arrays.joblib"
    joblib.dump([np.zeros(1000), np.ones(1000)], path)

    # then each limit is enforced on its own
    with pytest.raises(ScanError, match="past the limit of 999"):
        artifact_scan(path=path, fmt="joblib", limits=ScanLimits(max_array_elements=999))
    with pytest.raises(ScanError, match="more than 1500 elements in total"):
        artifact_scan(path=path, fmt="joblib", limits=ScanLimits(max_total_elements=1500))
    assert artifact_scan(path=path, fmt="joblib").arrays == 2


def test_expansion_and_time_limits_refuse_with_a_reason(tmp_path: Path) -> None:
    # given a compressed joblib file that inflates to 5 MB
    path = tmp_path / "zeros.joblib"
    joblib.dump(np.zeros(640_000), path, compress=("zlib", 3))

    with pytest.raises(ScanError, match="expands past 1000000 bytes"):
        artifact_scan(path=path, fmt="joblib", limits=ScanLimits(max_expanded_bytes=1_000_000))
    with pytest.raises(ScanError, match="longer than 0 seconds"):
        artifact_scan(path=path, fmt="joblib", limits=ScanLimits(max_seconds=0))


def test_default_limits_are_bounded() -> None:
    limits = ScanLimits()

    assert 0 < limits.max_seconds <= 120
    assert 0 < limits.max_opcodes <= 100_000_000
    assert 0 < limits.max_long_bytes <= 1024
    assert limits.max_array_elements <= limits.max_total_elements


def test_the_scanner_imports_neither_django_nor_what_it_scans(tmp_path: Path) -> None:
    # given a fresh interpreter that only imports the scanner and scans a pickle naming a module
    path = _pickle_file(tmp_path, b"\x80\x02cthis\nabc\n.")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from registry.scanning import ScanError, artifact_scan\n"
        "try:\n"
        f"    artifact_scan(path=Path({str(path)!r}), fmt='pickle')\n"
        "except ScanError as exc:\n"
        "    print(exc)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('django', 'this'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )

    # then the scan refused the name and neither Django nor the named module was imported
    assert "this.abc, which is not on the allowlist" in result.stdout
    assert result.stdout.strip().endswith("[]")


# --- the allowlist -------------------------------------------------------------------------------


def test_the_allowlist_is_exact_names_with_rules_and_versions() -> None:
    data = json.loads(ALLOWLIST_PATH.read_text())

    assert set(data) == {"generated_with", "classes", "reconstructors", "functions"}
    classes, functions = set(data["classes"]), set(data["functions"])
    reconstructors = data["reconstructors"]
    # each name has one role, and every reconstructor has a rule this scanner enforces
    assert not classes & functions
    assert not (classes | functions) & set(reconstructors)
    assert all(spec["rule"] in dict(iter_reconstructor_rules()) for spec in reconstructors.values())
    # no whole packages, no excluded names
    assert all("." in name and not name.endswith(".") for name in classes | functions)
    assert not [name for name in classes | functions | set(reconstructors) if excluded(name)]
    assert data["generated_with"]["scikit-learn"] == sklearn.__version__
    assert data["generated_with"]["numpy"] == np.__version__


def test_an_edited_allowlist_cannot_give_a_callable_another_ones_rule() -> None:
    # given the allowlist with eval added under the rule written for protocol 2 bytes
    data = json.loads(ALLOWLIST_PATH.read_text())
    data["reconstructors"]["builtins.eval"] = {"rule": "latin1_bytes", "accepts": "text"}

    # when / then it cannot be loaded
    with pytest.raises(ValueError, match=r"builtins\.eval"):
        Allowlist.from_data(data)


def test_the_checked_in_allowlist_is_up_to_date() -> None:
    # given the installed libraries, when the allowlist is regenerated in check mode
    started = time.monotonic()
    out = io.StringIO()
    call_command("allowlist_build", "--check", stdout=out)

    # then it matches the checked-in file, and regenerating stays quick enough to test
    assert "up to date" in out.getvalue()
    assert time.monotonic() - started < 60


def test_skops_own_audit_imports_nothing_the_file_names(tmp_path: Path) -> None:
    # given a skops file naming modules with side effects on import (the scanner cross-checks
    # its own schema walk with skops' audit, which must not import them either)
    assert "this" not in sys.modules
    assert "antigravity" not in sys.modules
    schema = {
        "__class__": "Anything",
        "__module__": "this",
        "__loader__": "ObjectNode",
        "content": {
            "__class__": "fly",
            "__module__": "antigravity",
            "__loader__": "FunctionNode",
        },
        "protocol": 2,
    }
    path = tmp_path / "names.skops"
    path.write_bytes(skops_archive(schema))

    # when skops audits it
    names = sio.get_untrusted_types(file=path)

    # then it reports both names and has imported neither
    assert names == ["antigravity.fly", "this.Anything"]
    assert "this" not in sys.modules
    assert "antigravity" not in sys.modules
    with pytest.raises(ScanError, match=r"this\.Anything"):
        artifact_scan(path=path, fmt="skops")
