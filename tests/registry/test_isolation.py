"""The three walls end to end: an upload is scanned, loaded and compiled in the sandbox; the web
process serves the graph (or a runner serves the pickle) and never unpickles anything itself;
versions from before the walls are not served until they went through them; a version whose
runners keep failing is quarantined."""

import io
import pickle
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient
from sklearn.ensemble import HistGradientBoostingClassifier

from registry import services
from registry.models import ModelVersion, RegisteredModel
from serving import cache, runners
from tests.factories import ModelVersionFactory
from tests.registry.conftest import COLUMNS, OsSystem, serialise, upload

pytestmark = pytest.mark.django_db(transaction=True)

ROW = {"age": 0.5, "income": -1.0, "tenure": 2.0, "score": 0.1}
_unpickled: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # pickle raises this audit event for every class or function a load looks up.
    if event == "pickle.find_class" and _watching:
        _unpickled.append(f"{args[0]}.{args[1]}")


_watching = False
sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def _fresh_processes() -> Any:
    cache.cache_clear()
    yield
    runners.runners_stop()
    cache.cache_clear()


def _validated(model: RegisteredModel, data: bytes, name: str) -> ModelVersion:
    version = upload(model, data, name=name, input_example=[ROW])
    return services.version_validate(version_id=version.pk)


def _predict(
    client: APIClient,
    version: ModelVersion,
    rows: list[dict[str, Any]],
    outputs: tuple[str, ...] = ("predict", "predict_proba"),
) -> Any:
    url = f"/api/v1/models/{version.model.name}/versions/{version.version}/predict"
    return client.post(url, {"instances": rows, "return": list(outputs)}, format="json")


def test_uploads_are_validated_under_seccomp_and_landlock_and_record_it(
    estimators: dict[str, Any], open_model: RegisteredModel, api_client: APIClient, user: Any
) -> None:
    version = _validated(open_model, serialise(estimators["pipeline"], "joblib"), "m.joblib")

    assert version.status == ModelVersion.Status.READY, version.status_message
    assert version.protections["seccomp"] is True
    assert version.protections["landlock_abi"] >= 1
    assert version.protections["env"] == "scrubbed"
    # the record is visible in the API and on the model's page
    body = api_client.get(f"/api/v1/models/{open_model.name}/versions/1/").json()
    assert body["engine"] == "onnx"
    assert body["protections"]["seccomp"] is True
    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/models/{open_model.name}/")
    assert b"seccomp: on" in page.content


def test_web_process_serves_graphs_and_runners_without_unpickling(
    frame: Any, open_model: RegisteredModel, api_client: APIClient
) -> None:
    global _watching
    X, y_class, _ = frame
    # given a compiled pipeline and a model that does not compile (served by a runner)
    pipeline = _validated(open_model, serialise(_logistic(X, y_class), "joblib"), "p.joblib")
    hgb = HistGradientBoostingClassifier(max_iter=5).fit(X, y_class)
    other = RegisteredModel.objects.create(name="hgb")
    boosted = _validated(other, serialise(hgb, "joblib"), "hgb.joblib")
    assert pipeline.engine == ModelVersion.Engine.ONNX, pipeline.compilation
    assert boosted.status == ModelVersion.Status.READY, boosted.status_message

    # when both answer predictions through the API while pickle loads are watched
    rows = [ROW, {"age": -2.0, "income": 0.3, "tenure": -0.5, "score": 1.5}]
    _unpickled.clear()
    _watching = True
    try:
        first = _predict(api_client, pipeline, rows)
        second = _predict(api_client, boosted, rows)
    finally:
        _watching = False

    # then both answer like the estimators, and this process looked up no pickled class
    assert first.status_code == 200, first.content
    assert second.status_code == 200, second.content
    frame_rows = pd.DataFrame(rows, columns=COLUMNS)
    assert first.json()["predictions"] == list(_logistic(X, y_class).predict(frame_rows))
    assert second.json()["predictions"] == list(hgb.predict(frame_rows))
    assert np.allclose(second.json()["probabilities"], hgb.predict_proba(frame_rows))
    assert _unpickled == []


def _logistic(X: Any, y: Any) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


def test_versions_from_before_the_walls_are_not_served_until_revalidated(
    estimators: dict[str, Any], open_model: RegisteredModel, api_client: APIClient, marker: Path
) -> None:
    # given two versions marked ready by an older platform: a benign one and one whose pickle
    # runs a shell command (no engine recorded, as before compilation existed)
    benign = _legacy(open_model, 1, serialise(estimators["pipeline"], "joblib"))
    evil = _legacy(open_model, 2, pickle.dumps(OsSystem(marker), protocol=4))

    # then neither is served
    response = _predict(api_client, benign, [ROW])
    assert response.status_code == 503
    assert "versions_revalidate" in response.json()["detail"]

    # when the operator command runs
    out = io.StringIO()
    call_command("versions_revalidate", stdout=out)

    # then the benign one is compiled and served, the hostile one rejected, its payload unrun
    benign.refresh_from_db()
    evil.refresh_from_db()
    assert benign.status == ModelVersion.Status.READY
    assert benign.engine == "onnx"
    assert evil.status == ModelVersion.Status.REJECTED
    assert "posix.system" in evil.status_message or "os.system" in evil.status_message
    assert not marker.exists()
    assert _predict(api_client, benign, [ROW]).status_code == 200
    assert "1 onnx" in out.getvalue()
    assert "1 rejected" in out.getvalue()


def _legacy(model: RegisteredModel, number: int, data: bytes) -> ModelVersion:
    import hashlib

    from django.core.files.base import ContentFile

    version = ModelVersion(
        model=model,
        version=number,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        format=ModelVersion.Format.JOBLIB,
        status=ModelVersion.Status.READY,
        signature={"inputs": [{"name": c, "dtype": "float64"} for c in COLUMNS]},
    )
    version.artifact.save("legacy.joblib", ContentFile(data), save=False)
    version.save()
    return version


class _Crasher:
    """Loads as an object whose predict kills its own process: a runner's worst day."""

    def __reduce__(self) -> Any:
        source = (
            "type('Crasher', (), {'n_features_in_': 4, "
            "'predict': lambda self, X: __import__('os')._exit(3)})()"
        )
        return (eval, (source,))


def test_a_runner_that_keeps_crashing_gets_its_version_quarantined(
    settings: Any, open_model: RegisteredModel, api_client: APIClient
) -> None:
    settings.MLPLATFORM_RUNNER_MAX_FAILURES = 2
    # given a runner-served version whose predict crashes the process (stored directly: the
    # scan would never let such a file through; this tests the runner wall on its own)
    buffer = io.BytesIO()
    joblib.dump(_Crasher(), buffer)
    version = ModelVersionFactory.create(
        model__name="crasher",
        model__owner=None,
        estimator=_logistic_stub(),
        artifact_bytes=buffer.getvalue(),
        input_example=[ROW],
    )
    ModelVersion.objects.filter(pk=version.pk).update(engine=ModelVersion.Engine.PYTHON)
    version.refresh_from_db()

    # when it is asked twice, each crash is that request's 503, naming the version
    for _ in range(2):
        response = _predict(api_client, version, [ROW], ("predict",))
        assert response.status_code == 503, response.content
        assert "crasher v1" in response.json()["detail"]

    # then the version is quarantined with the reason, and no longer served
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.QUARANTINED
    assert "runner" in version.status_message
    assert _predict(api_client, version, [ROW], ("predict",)).status_code == 409


def _logistic_stub() -> Any:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(20, 4)), columns=COLUMNS)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(frame, (frame["age"] > 0).astype(int))
