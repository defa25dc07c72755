"""Traffic sent through the predict API, logged at a sample rate of 1, then turned into the
current hour's window: 50k rows drawn like the training data raise nothing on any column; a
moved mean and a new category move only their column past the default thresholds; requests
with nulls are refused and counted per field in the window's rejections."""

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from monitoring.models import MonitoringWindow
from monitoring.windows import windows_compute
from registry.models import RegisteredModel
from tests.conftest import client_for, team_member
from tests.monitoring.conftest import COLUMNS, rows_like_training

PSI_ALERT = 0.2
NULL_RATE_ALERT = 0.05
BATCH = 10_000


@pytest.fixture
def client(media: Any, settings: Any, django_user_model: Any, team: Any, churn: Any) -> Any:
    """ana of the team `data`, churn v1 with an uploaded reference, every request logged at
    once."""
    settings.MLPLATFORM_LOG_BACKGROUND = False
    RegisteredModel.objects.filter(pk=churn.model_id).update(log_sample_rate=1.0)
    api = client_for(team_member(django_user_model, "ana", team, apps=("registry",)))
    handle = io.BytesIO(rows_like_training(5000, seed=3).to_csv(index=False).encode())
    handle.name = "reference.csv"
    response = api.post(
        "/api/v1/models/churn/versions/1/reference", {"file": handle}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return api


def _predict(client: Any, frame: pd.DataFrame) -> Any:
    inputs = {name: frame[name].tolist() for name in COLUMNS}
    return client.post(
        "/api/v1/models/churn/predict",
        {"inputs": inputs, "return": ["predict_proba"]},
        format="json",
    )


def _send(client: Any, frame: pd.DataFrame) -> None:
    for offset in range(0, len(frame), BATCH):
        response = _predict(client, frame.iloc[offset : offset + BATCH])
        assert response.status_code == 200, response.content


def _now_window(churn: Any) -> MonitoringWindow:
    now = datetime.now(UTC)
    windows = windows_compute(
        model=churn.model, granularity="hour", start=now - timedelta(hours=1), end=now
    )
    current = [w for w in windows if w.start <= now < w.end]
    if not current:  # the hour turned while the requests were sent
        current = windows[-1:]
    assert len(current) == 1, windows
    return current[0]


def _drifted(window: MonitoringWindow) -> list[str]:
    found = []
    for kind, figures in (("in", window.columns), ("out", window.outputs)):
        for name, column in figures.items():
            if (column.get("psi") or 0) > PSI_ALERT:
                found.append(f"{kind}:{name}:psi")
            if column["null_rate"] > NULL_RATE_ALERT:
                found.append(f"{kind}:{name}:null_rate")
            if (column.get("unknown_categories") or 0) > 0:
                found.append(f"{kind}:{name}:unknown_categories")
    return sorted(found)


def test_a_stationary_stream_through_the_api_raises_nothing(client: Any, churn: Any) -> None:
    _send(client, rows_like_training(50_000, seed=7))

    window = _now_window(churn)

    assert (window.rows, window.requests) == (50_000, 5)
    assert _drifted(window) == []
    assert set(window.outputs) == {"prediction", "proba__no", "proba__yes"}
    assert window.rejections == {}


def test_shifts_through_the_api_move_only_their_column(client: Any, churn: Any) -> None:
    frame = rows_like_training(4000, seed=11)
    frame["amount"] += 30
    frame.loc[frame.sample(frac=0.3, random_state=0).index, "city"] = "berlin"
    _send(client, frame)
    holes = rows_like_training(10, seed=12).astype(object)
    holes.loc[3, "age"] = None
    for _ in range(3):
        refused = _predict(client, holes)
        assert refused.status_code == 400
        assert "age" in refused.json()["detail"]

    window = _now_window(churn)

    assert window.rows == 4000
    assert [d for d in _drifted(window) if d.startswith("in:")] == [
        "in:amount:psi",
        "in:city:psi",
        "in:city:unknown_categories",
    ]
    assert window.columns["city"]["unknown_categories"] == pytest.approx(0.3, abs=0.01)
    assert window.columns["age"]["psi"] < 0.05
    assert window.rejections == {"age": 3}
