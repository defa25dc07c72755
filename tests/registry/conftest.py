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


@pytest.fixture
def member(django_user_model: Any, team: Group) -> Any:
    user = django_user_model.objects.create_user(username="bob", password="pw-bob-12345")
    user.groups.add(team)
    return user


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
