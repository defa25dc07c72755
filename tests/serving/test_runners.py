"""Model runners: real confined processes, real artifacts, no mocks.

Some artifacts are crafted pickles whose loaded object misbehaves on a chosen input (crashes,
hangs, tries to escape, garbles its reply): the runner loads what the registry accepted without
scanning again, so these stand for a model that got past the scan.
"""

import errno
import hashlib
import io
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import psutil
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from registry.runner import takes_float_matrix
from serving.runners import (
    RunnerInputError,
    RunnerSpec,
    RunnerUnavailable,
    runner_count,
    runner_outputs,
    runner_protections,
    runners_stop,
)

IRIS_COLUMNS = ("f0", "f1", "f2", "f3")
BOTH = ["predict", "predict_proba"]


@pytest.fixture(autouse=True)
def _stop_runners() -> Iterator[None]:
    yield
    runners_stop()


def spec_for(
    data: bytes,
    *,
    fmt: str = "joblib",
    columns: tuple[str, ...] = ("a",),
    named: bool = False,
    trusted: tuple[str, ...] = (),
    key: str | None = None,
    label: str = "test v1",
) -> RunnerSpec:
    return RunnerSpec(
        key=key or hashlib.sha256(data).hexdigest(),
        label=label,
        format=fmt,
        trusted_types=trusted,
        columns=columns,
        named_columns=named,
        open_artifact=lambda: io.BytesIO(data),
    )


def joblib_bytes(estimator: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def crafted(source: str) -> bytes:
    """A pickle that, when loaded, runs `source` (which binds `model`) and returns `model`:
    REDUCE of builtins.eval on an expression that execs the source."""

    def text(value: str) -> bytes:
        data = value.encode()
        return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE

    expression = "[exec(SOURCE, ns := {'__name__': 'crafted'}), ns['model']][1]"
    return (
        b"\x80\x02cbuiltins\neval\n("
        + text(expression)
        + b"}"
        + text("SOURCE")
        + text(source)
        + b"stR."
    )


def runner_pids() -> list[int]:
    """Runner processes started by this process."""
    return sorted(
        child.pid
        for child in psutil.Process().children()
        if "registry.runner" in " ".join(child.cmdline())
    )


# --- fitted models ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def colors_pipeline() -> Pipeline:
    """Fitted on a DataFrame: a numeric column and a string category, string labels."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"x": rng.normal(size=40), "color": rng.choice(["red", "green", "blue"], size=40)}
    )
    labels = np.where(frame["x"] + (frame["color"] == "red") > 0.3, "yes", "no")
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["x"]),
            ("cat", OneHotEncoder(handle_unknown="error"), ["color"]),
        ]
    )
    return Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(frame, labels)


def colors_frame(xs: list[float], colors: list[str]) -> pd.DataFrame:
    """What serving.codecs builds for a model with named columns and a string input."""
    return pd.DataFrame(
        {"x": np.asarray(xs, dtype=np.float64), "color": np.asarray(colors, dtype=object)},
        copy=False,
    )


@pytest.fixture(scope="module")
def iris_model() -> LogisticRegression:
    iris = load_iris()
    return LogisticRegression(max_iter=500).fit(iris.data, iris.target)


def iris_spec(model: LogisticRegression) -> RunnerSpec:
    data = sio.dumps(model)
    trusted = tuple(sio.get_untrusted_types(data=data))
    return spec_for(data, fmt="skops", columns=IRIS_COLUMNS, trusted=trusted, label="iris v1")


MISBEHAVING = """
import os
import signal

import numpy as np


class Model:
    def predict(self, X):
        code = float(X[0, 0])
        if code == 1:
            os._exit(3)
        if code == 2:
            os.kill(os.getpid(), signal.SIGSEGV)
        if code == 3:
            while True:
                pass
        if code == 4:
            raise ValueError("code 4 is not a valid input")
        return X[:, 0] * 2


model = Model()
"""


# --- answers ------------------------------------------------------------------------------------


def test_pipeline_on_named_columns_with_a_string_category_matches_in_process(
    colors_pipeline: Pipeline,
) -> None:
    spec = spec_for(joblib_bytes(colors_pipeline), columns=("x", "color"), named=True)
    frame = colors_frame([0.1, -1.5, 2.0, 0.4], ["red", "green", "blue", "red"])

    got = runner_outputs(spec, frame, BOTH)

    assert got["predict"].tolist() == colors_pipeline.predict(frame).tolist()
    assert set(got["predict"].tolist()) <= {"yes", "no"}
    assert got["predict_proba"].dtype == np.float64
    assert np.array_equal(got["predict_proba"], colors_pipeline.predict_proba(frame))


@pytest.fixture(scope="module")
def named_numeric_pipeline() -> Pipeline:
    """Fitted on a DataFrame of float columns, as users fit on their tables."""
    iris = load_iris(as_frame=True)
    frame = iris.data.set_axis(list(IRIS_COLUMNS), axis=1)
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(
        frame, iris.target
    )


def test_named_numeric_pipeline_answers_the_float_matrix_as_it_answers_the_frame(
    named_numeric_pipeline: Pipeline,
) -> None:
    spec = spec_for(joblib_bytes(named_numeric_pipeline), columns=IRIS_COLUMNS, named=True)
    matrix = np.ascontiguousarray(load_iris().data[::7])
    frame = pd.DataFrame(matrix, columns=list(IRIS_COLUMNS))

    got = runner_outputs(spec, matrix, BOTH)

    assert np.array_equal(got["predict"], named_numeric_pipeline.predict(frame))
    assert np.array_equal(got["predict_proba"], named_numeric_pipeline.predict_proba(frame))


def test_the_bare_matrix_is_for_estimators_that_answer_it_as_they_answer_names(
    named_numeric_pipeline: Pipeline,
) -> None:
    by_name = Pipeline(
        [
            ("prep", ColumnTransformer([("num", StandardScaler(), list(IRIS_COLUMNS))])),
            ("clf", LogisticRegression()),
        ]
    ).fit(pd.DataFrame(load_iris().data, columns=list(IRIS_COLUMNS)), load_iris().target)

    assert takes_float_matrix(named_numeric_pipeline, IRIS_COLUMNS)
    assert not takes_float_matrix(named_numeric_pipeline, IRIS_COLUMNS[::-1])  # another order
    assert not takes_float_matrix(by_name, IRIS_COLUMNS)  # selects columns by name
    assert not takes_float_matrix(
        LogisticRegression().fit(load_iris().data, load_iris().target), IRIS_COLUMNS
    )  # fitted on an array: no names learned


NAMES_MATTER = """
import numpy as np


class Model:
    feature_names_in_ = np.array(["a", "b"], dtype=object)

    def predict(self, X):
        # Answers 1 for a DataFrame, 0 for anything else: the runner must keep its frame.
        return np.full(len(X), 1 if hasattr(X, "columns") else 0)


model = Model()
"""


def test_a_model_that_answers_a_bare_matrix_differently_keeps_its_frame() -> None:
    spec = spec_for(crafted(NAMES_MATTER), columns=("a", "b"), named=True)

    got = runner_outputs(spec, np.zeros((3, 2)), ["predict"])

    assert got["predict"].tolist() == [1, 1, 1]


def test_numpy_fitted_skops_model_matches_in_process(iris_model: LogisticRegression) -> None:
    spec = iris_spec(iris_model)
    matrix = load_iris().data[::10]

    got = runner_outputs(spec, matrix, BOTH)

    assert got["predict"].dtype == iris_model.predict(matrix).dtype
    assert np.array_equal(got["predict"], iris_model.predict(matrix))
    assert np.array_equal(got["predict_proba"], iris_model.predict_proba(matrix))
    assert runner_count() == 1


def test_protections_are_those_the_runner_reported(iris_model: LogisticRegression) -> None:
    protections = runner_protections(iris_spec(iris_model))

    assert protections["seccomp"] is True
    assert protections["network"] == "denied"
    assert protections["processes"] == "denied"
    assert protections["writes"] == "denied"
    assert runner_count() == 1


# --- errors -------------------------------------------------------------------------------------


def test_estimator_value_error_is_an_input_error_and_the_runner_survives(
    colors_pipeline: Pipeline,
) -> None:
    spec = spec_for(joblib_bytes(colors_pipeline), columns=("x", "color"), named=True)
    runner_outputs(spec, colors_frame([0.0], ["red"]), ["predict"])
    before = runner_pids()

    with pytest.raises(RunnerInputError, match="purple"):
        runner_outputs(spec, colors_frame([0.0], ["purple"]), ["predict"])

    assert runner_pids() == before
    assert runner_outputs(spec, colors_frame([0.0], ["blue"]), ["predict"])["predict"].shape == (1,)


def test_a_model_without_predict_proba_is_an_input_error() -> None:
    spec = spec_for(crafted(MISBEHAVING))

    with pytest.raises(RunnerInputError, match="no predict_proba"):
        runner_outputs(spec, np.zeros((1, 1)), BOTH)

    with pytest.raises(RunnerInputError, match="code 4 is not a valid input"):
        runner_outputs(spec, np.full((1, 1), 4.0), ["predict"])
    assert runner_count() == 1


@pytest.mark.parametrize(("code", "how"), [(1, "exit status 3"), (2, "SIGSEGV")])
def test_a_crash_is_a_failure_and_the_next_call_gets_a_new_runner(code: int, how: str) -> None:
    spec = spec_for(crafted(MISBEHAVING), label="churn v3")
    assert runner_outputs(spec, np.array([[5.0]]), ["predict"])["predict"].tolist() == [10.0]
    (first,) = runner_pids()

    with pytest.raises(RunnerUnavailable) as caught:
        runner_outputs(spec, np.array([[float(code)]]), ["predict"])

    assert caught.value.failure is True
    assert "churn v3" in str(caught.value)
    assert how in str(caught.value)
    assert runner_count() == 0
    assert runner_outputs(spec, np.array([[6.0]]), ["predict"])["predict"].tolist() == [12.0]
    (second,) = runner_pids()
    assert second != first


def test_a_hang_is_cut_at_the_time_limit_and_the_next_call_recovers(settings: Any) -> None:
    settings.MLPLATFORM_RUNNER_TIMEOUT_SECONDS = 1.0
    spec = spec_for(crafted(MISBEHAVING), label="churn v3")
    runner_outputs(spec, np.array([[0.0]]), ["predict"])
    (first,) = runner_pids()

    started = time.monotonic()
    with pytest.raises(RunnerUnavailable) as caught:
        runner_outputs(spec, np.array([[3.0]]), ["predict"])
    elapsed = time.monotonic() - started

    assert 1.0 <= elapsed < 2.5
    assert caught.value.failure is True
    assert str(caught.value) == "churn v3 did not answer within 1 s; its runner was replaced."
    assert not psutil.pid_exists(first)
    assert runner_outputs(spec, np.array([[1.5]]), ["predict"])["predict"].tolist() == [3.0]


def test_the_timeout_argument_overrides_the_setting(settings: Any) -> None:
    settings.MLPLATFORM_RUNNER_TIMEOUT_SECONDS = 60.0
    spec = spec_for(crafted(MISBEHAVING))
    runner_outputs(spec, np.array([[0.0]]), ["predict"])

    started = time.monotonic()
    with pytest.raises(RunnerUnavailable, match=r"within 0\.5 s"):
        runner_outputs(spec, np.array([[3.0]]), ["predict"], timeout=0.5)

    assert time.monotonic() - started < 2.0


def test_a_sha256_mismatch_is_refused_before_loading(iris_model: LogisticRegression) -> None:
    data = joblib_bytes(iris_model)
    spec = spec_for(data, columns=IRIS_COLUMNS, key=hashlib.sha256(b"other bytes").hexdigest())

    with pytest.raises(RunnerUnavailable, match="sha256") as caught:
        runner_outputs(spec, np.zeros((1, 4)), ["predict"])

    assert caught.value.failure is True
    assert "test v1 cannot be served" in str(caught.value)
    assert runner_count() == 0
    assert runner_pids() == []


def test_a_runner_that_does_not_start_in_time_is_stopped(settings: Any) -> None:
    settings.MLPLATFORM_RUNNER_STARTUP_SECONDS = 1.0
    spec = spec_for(crafted("import time\ntime.sleep(60)\nmodel = None\n"), label="slow v2")

    started = time.monotonic()
    with pytest.raises(RunnerUnavailable, match=r"slow v2's runner did not start within 1 s"):
        runner_outputs(spec, np.zeros((1, 1)), ["predict"])

    assert time.monotonic() - started < 3.0
    assert runner_count() == 0
    assert runner_pids() == []


HOSTILE_REPLIES = """
import json
import os
import struct
import subprocess
import sys
import sys


def frame(header, body=b"", body_size=None):
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    size = len(body) if body_size is None else body_size
    return struct.pack("<4sIQ", b"MLR1", len(head), size) + head + body


REPLIES = {
    1: frame({"outputs": {}}, body_size=2**40),
    2: frame({"outputs": {"predict": {"dtype": "object", "shape": [1], "nbytes": 8}}}, bytes(8)),
    3: frame({"outputs": {"predict": {"dtype": "float64", "shape": [5], "nbytes": 40}}}, bytes(40)),
    4: b"\\x80\\x04\\x95" + bytes(40),
}


class Model:
    def predict(self, X):
        os.write(int(sys.argv[-1]), REPLIES[int(X[0, 0])])
        return X[:, 0]


model = Model()
"""


@pytest.mark.parametrize("code", [1, 2, 3, 4])
def test_a_malformed_reply_is_handled_as_a_crash(code: int) -> None:
    spec = spec_for(crafted(HOSTILE_REPLIES))

    with pytest.raises(RunnerUnavailable, match="malformed reply") as caught:
        runner_outputs(spec, np.array([[float(code)]]), ["predict"])

    assert caught.value.failure is True
    assert runner_count() == 0
    assert runner_pids() == []


# --- confinement --------------------------------------------------------------------------------

ESCAPES = """
import errno
import socket
import subprocess

import numpy as np


def attempt(action):
    try:
        action()
    except OSError as exc:
        return exc.errno
    return 0


def connect():
    with socket.create_connection(("127.0.0.1", {port}), timeout=2) as sock:
        sock.sendall(b"escaped")


def write():
    with open({outside!r}, "w") as stream:
        stream.write("escaped")


def shell():
    subprocess.run(["/bin/sh", "-c", "touch " + {marker!r}], check=False)


class Model:
    def predict(self, X):
        row = [attempt(connect), attempt(write), attempt(shell)]
        return np.array([row] * len(X), dtype=np.int64)


model = Model()
"""


def test_seccomp_is_active_in_a_runner(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    outside, marker = tmp_path / "outside.txt", tmp_path / "shell-ran"
    source = ESCAPES.format(
        port=listener.getsockname()[1], outside=str(outside), marker=str(marker)
    )
    spec = spec_for(crafted(source))

    with listener:
        got = runner_outputs(spec, np.zeros((2, 1)), ["predict"])["predict"]
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected

    assert got.tolist() == [[errno.EPERM] * 3] * 2
    assert not outside.exists()
    assert not marker.exists()


SECRETS = """
import os

import numpy as np


class Model:
    def predict(self, X):
        return np.array([" ".join(sorted(os.environ))] * len(X), dtype=object)


model = Model()
"""


def test_a_runner_sees_none_of_the_parents_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SECRET_KEY", "not-for-models")
    monkeypatch.setenv("DATABASE_URL", "postgres://user:password@db/app")
    spec = spec_for(crafted(SECRETS))

    (keys,) = runner_outputs(spec, np.zeros((1, 1)), ["predict"])["predict"].tolist()

    assert "PATH" in keys.split()
    assert "DJANGO_SECRET_KEY" not in keys.split()
    assert "DATABASE_URL" not in keys.split()


# --- the pool -----------------------------------------------------------------------------------


def test_runner_count_and_runners_stop(iris_model: LogisticRegression) -> None:
    runner_outputs(iris_spec(iris_model), np.zeros((1, 4)), ["predict"])
    runner_outputs(spec_for(crafted(MISBEHAVING)), np.zeros((1, 1)), ["predict"])
    pids = runner_pids()
    scratch_dirs = [Path(os.readlink(f"/proc/{pid}/cwd")) for pid in pids]
    assert runner_count() == 2
    assert all(path.name.startswith("mlp-runner-") for path in scratch_dirs)

    runners_stop()

    assert runner_count() == 0
    assert runner_pids() == []
    assert not any(path.exists() for path in scratch_dirs)


def test_a_forked_child_never_uses_its_parents_runner(iris_model: LogisticRegression) -> None:
    spec = iris_spec(iris_model)
    rows = load_iris().data[:3]
    expected = runner_outputs(spec, rows, ["predict"])["predict"].tolist()
    parents = runner_pids()

    pid = os.fork()
    if pid == 0:  # the child: report through its exit status only
        status = 1
        try:
            if runner_count() != 0:
                status = 2
            elif runner_outputs(spec, rows, ["predict"])["predict"].tolist() != expected:
                status = 3
            elif not runner_pids() or set(runner_pids()) & set(parents):
                status = 4
            else:
                status = 0
            runners_stop()
        finally:
            os._exit(status)
    _, wait_status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(wait_status) == 0
    assert runner_pids() == parents
    assert runner_outputs(spec, rows, ["predict"])["predict"].tolist() == expected


def test_concurrent_callers_share_one_runner_and_each_get_their_own_answer() -> None:
    spec = spec_for(crafted(MISBEHAVING))

    def call(value: float) -> list[float]:
        rows = np.array([[value], [value + 100]])
        return runner_outputs(spec, rows, ["predict"])["predict"].tolist()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(call, [float(v) for v in range(10, 50)]))

    assert answers == [[2.0 * v, 2.0 * (v + 100)] for v in range(10, 50)]
    assert runner_count() == 1
    assert len(runner_pids()) == 1


ORPHAN_PARENT = """
import hashlib, io, sys, threading, time
import django
django.setup()
import numpy as np
from serving.runners import RunnerSpec, runner_outputs
data = open(sys.argv[1], "rb").read()
spec = RunnerSpec(key=hashlib.sha256(data).hexdigest(), label="orphan v1", format="joblib",
                  trusted_types=(), columns=("a",), named_columns=False,
                  open_artifact=lambda: io.BytesIO(data))
runner_outputs(spec, np.array([[0.0]]), ["predict"])
threading.Thread(target=runner_outputs, args=(spec, np.array([[3.0]]), ["predict"]),
                 kwargs={"timeout": 600}, daemon=True).start()
print("started", flush=True)
time.sleep(600)
"""


def test_a_runner_stuck_in_a_predict_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    # given a web process whose runner is stuck in an endless predict
    artifact = tmp_path / "hang.joblib"
    artifact.write_bytes(crafted(MISBEHAVING))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mlplatform.settings.test"}
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_PARENT, str(artifact)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == b"started"
        time.sleep(0.5)
        (runner,) = [
            child.pid
            for child in psutil.Process(parent.pid).children()
            if "registry.runner" in " ".join(child.cmdline())
        ]

        # when that process is killed outright (no chance to stop its runners)
        parent.kill()
        parent.wait(timeout=10)

        # then the runner notices within a few seconds and exits
        deadline = time.monotonic() + 5
        while psutil.pid_exists(runner) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not psutil.pid_exists(runner) or psutil.Process(runner).status() == "zombie"
    finally:
        parent.kill()
