"""The validation pipeline, called inline: in the sandbox, scan → load → tree checks → signature →
smoke predict → ONNX compilation; then the graph is checked and stored."""

import os
import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn

from registry import services
from registry.confinement import child_env
from registry.models import ModelVersion, RegisteredModel
from serving import cache
from serving.engines import EngineUnavailable, engine_build
from tests.registry.conftest import (
    COLUMNS,
    EXPECTED_TASK,
    FORMAT_LABELS,
    KINDS,
    OsSystem,
    getattr_chain,
    serialise,
    suffix_of,
    upload,
    zip_bomb,
)

pytestmark = pytest.mark.django_db


def _validated(model: RegisteredModel, data: bytes, name: str, **kwargs: Any) -> ModelVersion:
    version = upload(model, data, name=name, **kwargs)
    assert version.status == ModelVersion.Status.PENDING
    return services.version_validate(version_id=version.pk)


@pytest.mark.parametrize("kind", KINDS)
def test_each_estimator_kind_becomes_ready_with_its_signature(
    kind: str, estimators: dict[str, Any], open_model: RegisteredModel
) -> None:
    # given a fitted estimator saved with joblib
    data = serialise(estimators[kind], "joblib")

    # when it is uploaded and validated
    version = _validated(open_model, data, f"{kind}.joblib")

    # then it is ready, and its signature names the training columns and the task
    assert version.status == ModelVersion.Status.READY, version.status_message
    signature = version.signature
    assert signature.column_names == COLUMNS
    assert signature.n_features == 4
    assert signature.named_columns is True
    assert signature.task == EXPECTED_TASK[kind]
    if EXPECTED_TASK[kind] == "classification":
        assert signature.classes == ("no", "yes")
        assert signature.has_predict_proba is True
    assert version.library_versions["sklearn"] == sklearn.__version__
    assert version.validation_job is not None
    assert version.validation_job.status == "succeeded"


@pytest.mark.parametrize("label", FORMAT_LABELS)
def test_each_format_becomes_ready(
    label: str, estimators: dict[str, Any], open_model: RegisteredModel
) -> None:
    data = serialise(estimators["pipeline"], label)

    version = _validated(open_model, data, f"model{suffix_of(label)}")

    assert version.status == ModelVersion.Status.READY, version.status_message
    assert version.format == label.split("-")[0]
    assert version.signature.estimator == "StandardScaler → LogisticRegression"
    # and it is served from a compiled graph that answers like the estimator
    assert version.engine == ModelVersion.Engine.ONNX, version.compilation
    assert version.compilation["max_deviation"] <= version.compilation["tolerance"]
    frame = pd.DataFrame([[0.5, -1.0, 2.0, 0.1]], columns=COLUMNS)
    outputs = engine_build(version).outputs(frame.to_numpy(), ["predict", "predict_proba"])
    assert list(outputs["predict"]) == list(estimators["pipeline"].predict(frame))
    assert np.allclose(outputs["predict_proba"], estimators["pipeline"].predict_proba(frame))


def test_input_example_sets_dtypes_and_is_used_for_the_smoke_prediction(
    estimators: dict[str, Any], open_model: RegisteredModel
) -> None:
    example = [{"age": 41, "income": 1.5, "tenure": 3, "score": 0.2}]

    version = _validated(
        open_model, serialise(estimators["linear"], "joblib"), "m.joblib", input_example=example
    )

    assert version.status == ModelVersion.Status.READY
    dtypes = version.signature.dtypes
    assert dtypes == {"age": "int64", "income": "float64", "tenure": "int64", "score": "float64"}


def test_input_example_missing_a_column_rejects_with_the_column_named(
    estimators: dict[str, Any], open_model: RegisteredModel
) -> None:
    version = _validated(
        open_model,
        serialise(estimators["linear"], "joblib"),
        "m.joblib",
        input_example=[{"age": 1}],
    )

    assert version.status == ModelVersion.Status.REJECTED
    assert "income" in version.status_message


@pytest.mark.parametrize("compress", [0, ("gzip", 3), ("bz2", 3), ("lzma", 3)])
def test_malicious_pipeline_is_rejected_and_its_payload_never_runs(
    compress: Any,
    estimators: dict[str, Any],
    open_model: RegisteredModel,
    marker: Path,
    tmp_path: Path,
) -> None:
    pipeline = estimators["pipeline"]
    pipeline.steps[1][1].hidden = OsSystem(marker)
    path = tmp_path / "evil.joblib"
    try:
        joblib.dump(pipeline, path, compress=compress)
    finally:
        del pipeline.steps[1][1].hidden

    version = _validated(open_model, path.read_bytes(), "evil.joblib")

    assert version.status == ModelVersion.Status.REJECTED
    assert "posix.system" in version.status_message
    assert version.validation_job is not None
    assert version.validation_job.status == "failed"
    assert not marker.exists()
    with pytest.raises(EngineUnavailable):
        engine_build(version)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_reduce_to_os_system_is_rejected_at_every_protocol(
    protocol: int, open_model: RegisteredModel, marker: Path
) -> None:
    data = pickle.dumps(OsSystem(marker), protocol=protocol)

    version = _validated(open_model, data, "evil.pkl")

    assert version.status == ModelVersion.Status.REJECTED
    assert not marker.exists()


def test_getattr_chain_is_rejected(open_model: RegisteredModel, marker: Path) -> None:
    version = _validated(open_model, getattr_chain(marker), "evil.pickle")

    assert version.status == ModelVersion.Status.REJECTED
    assert "builtins.getattr" in version.status_message
    assert not marker.exists()


def test_zip_bomb_is_rejected(open_model: RegisteredModel) -> None:
    version = _validated(open_model, zip_bomb(), "bomb.skops")

    assert version.status == ModelVersion.Status.REJECTED
    assert "zip bomb" in version.status_message


def test_truncated_pickle_is_rejected(
    estimators: dict[str, Any], open_model: RegisteredModel
) -> None:
    data = pickle.dumps(estimators["random_forest"], protocol=4)[:-50]

    version = _validated(open_model, data, "cut.pkl")

    assert version.status == ModelVersion.Status.REJECTED
    assert "truncated" in version.status_message or "readable" in version.status_message


def _with_sklearn_version(data: bytes, version: str) -> bytes:
    current = sklearn.__version__.encode()
    assert len(version) == len(current)
    assert current in data
    return data.replace(current, version.encode())


def test_model_saved_with_another_sklearn_minor_is_rejected_naming_both(
    estimators: dict[str, Any], open_model: RegisteredModel
) -> None:
    major, minor, _patch = sklearn.__version__.split(".")
    other = f"{major}.{int(minor) - 1}.{_patch}"
    data = _with_sklearn_version(serialise(estimators["linear"], "pickle-4"), other)

    version = _validated(open_model, data, "old.pkl")

    assert version.status == ModelVersion.Status.REJECTED
    assert other in version.status_message
    assert sklearn.__version__ in version.status_message


def test_model_saved_with_another_sklearn_patch_is_ready_with_a_warning(
    estimators: dict[str, Any], open_model: RegisteredModel
) -> None:
    major, minor, patch = sklearn.__version__.split(".")
    other = f"{major}.{minor}.{(int(patch) + 1) % 10}"
    data = _with_sklearn_version(serialise(estimators["linear"], "pickle-4"), other)

    version = _validated(open_model, data, "patch.pkl")

    assert version.status == ModelVersion.Status.READY
    assert "warning" in version.status_message
    assert version.library_versions["trained_with_sklearn"] == other


def test_tampered_graph_is_refused_on_load(
    estimators: dict[str, Any], open_model: RegisteredModel
) -> None:
    version = _validated(open_model, serialise(estimators["linear"], "joblib"), "m.joblib")
    assert version.engine == ModelVersion.Engine.ONNX

    # when someone rewrites the stored graph
    path = Path(version.graph.path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(EngineUnavailable, match="modified after validation"):
        engine_build(version)


def test_tampered_artifact_is_rejected_before_validation(
    estimators: dict[str, Any], open_model: RegisteredModel
) -> None:
    version = upload(open_model, serialise(estimators["linear"], "joblib"), name="m.joblib")
    Path(version.artifact.path).write_bytes(b"\x80\x04N.")

    version = services.version_validate(version_id=version.pk)

    assert version.status == ModelVersion.Status.REJECTED
    assert "sha256" in version.status_message


def test_sandbox_environment_holds_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DJANGO_SECRET_KEY", "DATABASE_URL", "AWS_SECRET_ACCESS_KEY", "CELERY_BROKER_URL"):
        monkeypatch.setenv(name, "secret-value")

    env = child_env()

    assert "secret-value" not in env.values()
    assert not [k for k in env if k.startswith(("AWS_", "DJANGO_", "DATABASE", "CELERY"))]
    assert os.environ["DATABASE_URL"] == "secret-value"


def test_sandbox_memory_limit_rejects_a_model_too_big_to_load(
    settings: Any, estimators: dict[str, Any], open_model: RegisteredModel
) -> None:
    settings.MLPLATFORM_SANDBOX_MEMORY_MB = 60  # far below what Python + scikit-learn need

    version = _validated(open_model, serialise(estimators["linear"], "joblib"), "m.joblib")

    assert version.status == ModelVersion.Status.REJECTED
    assert "memory" in version.status_message.lower() or "failed" in version.status_message


def test_validation_is_idempotent(estimators: dict[str, Any], open_model: RegisteredModel) -> None:
    version = _validated(open_model, serialise(estimators["linear"], "joblib"), "m.joblib")
    updated_at = version.updated_at

    again = services.version_validate(version_id=version.pk)

    assert again.status == ModelVersion.Status.READY
    assert again.updated_at == updated_at


def test_skops_forest_keeps_its_trusted_types_for_later_loads(
    estimators: dict[str, Any], open_model: RegisteredModel
) -> None:
    version = _validated(open_model, serialise(estimators["random_forest"], "skops"), "rf.skops")

    assert version.status == ModelVersion.Status.READY, version.status_message
    assert "sklearn.tree._tree.Tree" in (version.signature.trusted_types or ())
    frame = pd.DataFrame([[0.5, -1.0, 2.0, 0.1]], columns=COLUMNS)
    outputs = cache.engine_for(version).outputs(frame.to_numpy(), ["predict"])
    assert list(outputs["predict"]) == list(estimators["random_forest"].predict(frame))


def test_sandbox_timeout_rejects_with_the_limit_named(
    settings: Any, estimators: dict[str, Any], open_model: RegisteredModel
) -> None:
    settings.MLPLATFORM_SANDBOX_TIMEOUT_SECONDS = 0.2

    version = _validated(open_model, serialise(estimators["linear"], "joblib"), "m.joblib")

    assert version.status == ModelVersion.Status.REJECTED
    assert "MLPLATFORM_SANDBOX_TIMEOUT_SECONDS" in version.status_message


def test_categorical_columns_are_strings_and_the_smoke_row_uses_a_known_category(
    open_model: RegisteredModel,
) -> None:
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    # given a pipeline that one-hot encodes a text column (and errors on unknown categories)
    frame = pd.DataFrame({"plan": ["basic", "pro", "pro", "basic"], "age": [20, 30, 40, 50]})
    pipeline = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["plan"]), remainder="passthrough"),
        LogisticRegression(),
    ).fit(frame, [0, 1, 1, 0])

    # when it is uploaded without an input example
    version = _validated(open_model, serialise(pipeline, "skops"), "plan.skops")

    # then the smoke prediction used a real category, and the signature says so
    assert version.status == ModelVersion.Status.READY, version.status_message
    inputs = {c.name: c for c in version.signature.inputs}
    assert inputs["plan"].dtype == "string"
    assert inputs["plan"].categories == ("basic", "pro")
    assert inputs["age"].dtype == "float64"
