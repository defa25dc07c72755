"""Fixtures for the registry: tiny fitted estimators, their artifacts in every format, attacks."""

import io
import os
import pickle
import struct
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from sklearn.cluster import KMeans
from sklearn.ensemble import GradientBoostingClassifier, IsolationForest, RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from registry import services
from registry.models import ModelVersion, RegisteredModel

COLUMNS = ["age", "income", "tenure", "score"]
JOBLIB_COMPRESSIONS = ["zlib", "gzip", "bz2", "lzma", "xz", "lz4"]
# Every format the registry accepts: (label, file suffix).
FORMATS = (
    [("skops", ".skops"), ("joblib", ".joblib")]
    + [(f"joblib-{c}", ".joblib") for c in JOBLIB_COMPRESSIONS]
    + [(f"pickle-{p}", ".pkl") for p in (2, 3, 4, 5)]
)
FORMAT_LABELS = [label for label, _ in FORMATS]
KINDS = ["pipeline", "random_forest", "gradient_boosting", "linear", "kmeans", "isolation_forest"]
EXPECTED_TASK = {
    "pipeline": "classification",
    "random_forest": "classification",
    "gradient_boosting": "classification",
    "linear": "regression",
    "kmeans": "clustering",
    "isolation_forest": "anomaly_detection",
}


@pytest.fixture(scope="session")
def frame() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 4)), columns=COLUMNS)
    y_class = np.where(X["age"] + X["score"] > 0, "yes", "no")
    y_reg = X["income"].to_numpy() * 2.0 + 1.0
    return X, y_class, y_reg


@pytest.fixture(scope="session")
def estimators(frame: tuple[pd.DataFrame, np.ndarray, np.ndarray]) -> dict[str, Any]:
    X, y_class, y_reg = frame
    return {
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y_class),
        "random_forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y_class),
        "gradient_boosting": GradientBoostingClassifier(n_estimators=3, random_state=0).fit(
            X, y_class
        ),
        "linear": LinearRegression().fit(X, y_reg),
        "kmeans": KMeans(n_clusters=2, n_init=1, random_state=0).fit(X),
        "isolation_forest": IsolationForest(n_estimators=5, random_state=0).fit(X),
    }


def serialise(obj: Any, label: str) -> bytes:
    """The bytes a data scientist would upload for `obj` saved in the `label` format."""
    if label == "skops":
        return sio.dumps(obj)
    if label.startswith("pickle-"):
        return pickle.dumps(obj, protocol=int(label.split("-")[1]))
    buffer = io.BytesIO()
    compress: Any = 0 if label == "joblib" else (label.split("-")[1], 3)
    joblib.dump(obj, buffer, compress=compress)
    return buffer.getvalue()


def suffix_of(label: str) -> str:
    return dict(FORMATS)[label]


@pytest.fixture
def write_artifact(tmp_path: Path) -> Callable[..., Path]:
    def write(obj: Any, label: str, name: str = "model") -> Path:
        path = tmp_path / f"{name}-{label}{suffix_of(label)}"
        path.write_bytes(serialise(obj, label))
        return path

    return write


# --- people ---------------------------------------------------------------------------------------


@pytest.fixture
def team(db: Any) -> Group:
    return Group.objects.create(name="risk")


def registry_permissions() -> Any:
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="registry")


@pytest.fixture
def member(django_user_model: Any, team: Group) -> Any:
    """bob, of the team `risk`, with the registry's permissions (writes need both)."""
    user = django_user_model.objects.create_user(username="bob", password="pw-bob-12345")
    user.groups.add(team)
    user.user_permissions.add(*registry_permissions())
    return user


@pytest.fixture
def api_client(api_client: Any, user: Any) -> Any:
    """The token client; its user (of the team `data`) holds the registry's permissions."""
    user.user_permissions.add(*registry_permissions())
    return api_client


@pytest.fixture
def registered(db: Any, team: Group) -> RegisteredModel:
    return services.model_create(name="churn", description="Who leaves", owner=team)


@pytest.fixture
def open_model(db: Any) -> RegisteredModel:
    return services.model_create(name="open-model")


def upload(
    model: RegisteredModel, data: bytes, *, name: str = "model.joblib", **kwargs: Any
) -> ModelVersion:
    return services.version_upload(
        model=model, file=ContentFile(data, name=name), user=kwargs.pop("user", None), **kwargs
    )


# --- attacks -------------------------------------------------------------------------------


class OsSystem:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


class Eval:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


class Exec:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


class Popen:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (subprocess.Popen, (["touch", str(self.marker)],))


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def getattr_chain(marker: Path) -> bytes:
    """getattr(__import__('os'), 'system')('touch marker'), hand-written at protocol 2."""
    return (
        b"\x80\x02cbuiltins\ngetattr\ncbuiltins\n__import__\n"
        + _unicode("os")
        + b"\x85R"
        + _unicode("system")
        + b"\x86R"
        + _unicode(f"touch {marker}")
        + b"\x85R."
    )


def import_call(marker: Path) -> bytes:
    """__import__('os').system via an allowed-looking dotted name, at protocol 4."""
    return (
        b"\x80\x04"
        + b"\x8c\x0fsklearn._config"
        + b"\x8c\tos.system"
        + b"\x93"
        + _unicode(f"touch {marker}")
        + b"\x85R."
    )


def dunder_import(marker: Path) -> bytes:
    return b"\x80\x02cbuiltins\n__import__\n" + _unicode("os") + b"\x85R."


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "pwned"


def zip_bomb() -> bytes:
    """A 'skops' file whose one entry inflates 200 MB of zeros from a few hundred kilobytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", "{}")
        with archive.open("data.npy", "w", force_zip64=True) as entry:
            block = b"\0" * (1024 * 1024)
            for _ in range(200):
                entry.write(block)
    return buffer.getvalue()


# --- hand-assembled artifacts -------------------------------------------------------------------


class PickleAsm:
    """Writes pickle opcodes one by one, for artifacts no pickler would produce."""

    def __init__(self, protocol: int = 2) -> None:
        self.parts: list[bytes] = [bytes([0x80, protocol])]

    def raw(self, data: bytes) -> "PickleAsm":
        self.parts.append(data)
        return self

    def glob(self, dotted: str) -> "PickleAsm":
        module, _, name = dotted.rpartition(".")
        return self.raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def stack_glob(self, dotted: str) -> "PickleAsm":
        module, _, name = dotted.rpartition(".")
        return self.text(module).text(name).raw(b"\x93")

    def text(self, value: str) -> "PickleAsm":
        return self.raw(_unicode(value))

    def data(self, value: bytes) -> "PickleAsm":
        return self.raw(b"B" + struct.pack("<I", len(value)) + value)

    def integer(self, value: int) -> "PickleAsm":
        return self.raw(b"J" + struct.pack("<i", value))

    def real(self, value: float) -> "PickleAsm":
        return self.raw(b"G" + struct.pack(">d", value))

    def none(self) -> "PickleAsm":
        return self.raw(b"N")

    def true(self) -> "PickleAsm":
        return self.raw(b"\x88")

    def false(self) -> "PickleAsm":
        return self.raw(b"\x89")

    def mark(self) -> "PickleAsm":
        return self.raw(b"(")

    def tup(self, size: int | None = None) -> "PickleAsm":
        """TUPLE1-3 for the top `size` items, TUPLE (from the mark) when size is None."""
        return self.raw({0: b")", 1: b"\x85", 2: b"\x86", 3: b"\x87", None: b"t"}[size])

    def empty_list(self) -> "PickleAsm":
        return self.raw(b"]")

    def empty_dict(self) -> "PickleAsm":
        return self.raw(b"}")

    def setitem(self) -> "PickleAsm":
        return self.raw(b"s")

    def setitems(self) -> "PickleAsm":
        return self.raw(b"u")

    def append(self) -> "PickleAsm":
        return self.raw(b"a")

    def reduce(self) -> "PickleAsm":
        return self.raw(b"R")

    def newobj(self) -> "PickleAsm":
        return self.raw(b"\x81")

    def build(self) -> "PickleAsm":
        return self.raw(b"b")

    def pop(self) -> "PickleAsm":
        return self.raw(b"0")

    def put(self, index: int) -> "PickleAsm":
        return self.raw(b"r" + struct.pack("<I", index))

    def get(self, index: int) -> "PickleAsm":
        return self.raw(b"j" + struct.pack("<I", index))

    def call(self, dotted: str, *args: Callable[["PickleAsm"], Any]) -> "PickleAsm":
        """dotted(*args) with REDUCE; each arg is a function that pushes one value."""
        self.glob(dotted).mark()
        for push in args:
            push(self)
        return self.tup().reduce()

    def stop(self) -> bytes:
        return b"".join(self.parts) + b"."


def compressed(data: bytes, method: str) -> bytes:
    """`data` inside the compressed container joblib would have written."""
    import bz2
    import gzip
    import lzma
    import zlib

    import lz4.frame

    if method == "zlib":
        return zlib.compress(data)
    if method == "gzip":
        return gzip.compress(data)
    if method == "bz2":
        return bz2.compress(data)
    if method == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    if method == "lzma":
        return lzma.compress(data, format=lzma.FORMAT_ALONE)
    if method == "lz4":
        return lz4.frame.compress(data)
    raise ValueError(method)


def skops_archive(schema: dict[str, Any], files: dict[str, bytes] | None = None) -> bytes:
    """A .skops zip written by hand: its schema.json and any array files."""
    import json

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", json.dumps(schema))
        for name, data in (files or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


class Forged:
    """Pickles as whatever (callable, args[, state]) it is given: pickle writes the names."""

    def __init__(self, *reduce: Any) -> None:
        self.reduce = reduce

    def __reduce__(self) -> Any:
        return self.reduce


# --- benign families beyond KINDS -------------------------------------------------------------

FAMILIES = [
    "hist_gradient_boosting",
    "hist_gradient_boosting_categorical",
    "hist_gradient_boosting_regressor",
    "column_transformer_onehot",
    "svc_probability",
    "knn",
    "gaussian_nb",
    "mlp",
    "sgd",
    "ridge",
    "decision_tree",
]


@pytest.fixture(scope="session")
def family_frame(frame: tuple[pd.DataFrame, np.ndarray, np.ndarray]) -> pd.DataFrame:
    """The shared frame plus a text column and a pandas categorical column."""
    X, _, _ = frame
    mixed = X.copy()
    mixed["city"] = np.array(["paris", "lyon", "nice"])[np.arange(len(X)) % 3]
    mixed["plan"] = pd.Categorical(np.array(["basic", "pro"])[np.arange(len(X)) % 2])
    return mixed


@pytest.fixture(scope="session")
def families(
    frame: tuple[pd.DataFrame, np.ndarray, np.ndarray], family_frame: pd.DataFrame
) -> dict[str, tuple[Any, Any]]:
    """Fitted models of the families people upload, each with rows it can predict on."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge, SGDClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    X, y_class, y_reg = frame
    numeric = family_frame.drop(columns=["city"])
    columns = ColumnTransformer(
        [("num", StandardScaler(), COLUMNS), ("cat", OneHotEncoder(), ["city"])]
    )
    fitted = {
        "hist_gradient_boosting": (HistGradientBoostingClassifier(max_iter=5).fit(X, y_class), X),
        "hist_gradient_boosting_categorical": (
            HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype").fit(
                numeric, y_class
            ),
            numeric,
        ),
        "hist_gradient_boosting_regressor": (
            HistGradientBoostingRegressor(max_iter=5, categorical_features=[4]).fit(
                np.column_stack([X.to_numpy(), np.arange(len(X)) % 3]), y_reg
            ),
            np.column_stack([X.to_numpy(), np.arange(len(X)) % 3]),
        ),
        "column_transformer_onehot": (
            make_pipeline(columns, LogisticRegression()).fit(family_frame, y_class),
            family_frame,
        ),
        "svc_probability": (SVC(probability=True, random_state=0).fit(X, y_class), X),
        "knn": (KNeighborsClassifier(n_neighbors=3).fit(X, y_class), X),
        "gaussian_nb": (GaussianNB().fit(X, y_class), X),
        "mlp": (MLPClassifier(max_iter=50, random_state=0).fit(X, y_class), X),
        "sgd": (SGDClassifier(random_state=0).fit(X, y_class), X),
        "ridge": (Ridge().fit(X, y_reg), X),
        "decision_tree": (DecisionTreeClassifier(random_state=0).fit(X, y_class), X),
    }
    assert sorted(fitted) == sorted(FAMILIES)
    return fitted
