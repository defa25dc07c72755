"""Live windows from the prediction log: a stationary stream raises no figure past the default
thresholds on any column, while a moved mean, a new category and injected nulls each move exactly
the affected column's figures past them; the figures equal scipy's on the same values."""

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from monitoring import drift, profiles
from monitoring.models import MonitoringWindow, ReferenceProfile
from monitoring.windows import windows_compute
from tests.conftest import client_for, team_member
from tests.monitoring.conftest import COLUMNS, log_write, rows_like_training

# The default alert thresholds (PSI 0.2 on any column, null rate 5 %).
PSI_ALERT = 0.2
NULL_RATE_ALERT = 0.05
HOUR = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def referenced(media: Any, django_user_model: Any, team: Any, churn: Any) -> Any:
    """churn v1 with a reference uploaded from 5,000 rows like its training data."""
    client = client_for(team_member(django_user_model, "ana", team, apps=("registry",)))
    handle = io.BytesIO(rows_like_training(5000, seed=3).to_csv(index=False).encode())
    handle.name = "reference.csv"
    response = client.post(
        "/api/v1/models/churn/versions/1/reference", {"file": handle}, format="multipart"
    )
    assert response.status_code == 201, response.content
    return churn


def _hour(version: Any, frame: pd.DataFrame, at: datetime, role: str = "primary") -> None:
    log_write(version, frame[COLUMNS], at=at, role=role)


def _window(version: Any, at: datetime, role: str = "primary") -> MonitoringWindow:
    return MonitoringWindow.objects.get(version=version, role=role, granularity="hour", start=at)


def _alarms(window: MonitoringWindow) -> list[str]:
    found = []
    for kind, figures in (("in", window.columns), ("out", window.outputs)):
        for name, column in figures.items():
            if (column.get("psi") or 0) > PSI_ALERT:
                found.append(f"{kind}:{name}:psi")
            if column["null_rate"] > NULL_RATE_ALERT:
                found.append(f"{kind}:{name}:null_rate")
            if (column.get("out_of_range") or 0) > NULL_RATE_ALERT:
                found.append(f"{kind}:{name}:out_of_range")
            if (column.get("unknown_categories") or 0) > 0:
                found.append(f"{kind}:{name}:unknown_categories")
    return sorted(found)


def test_stationary_stream_of_50k_rows_raises_nothing(referenced: Any) -> None:
    _hour(referenced, rows_like_training(50_000, seed=7), HOUR)

    windows = windows_compute(
        model=referenced.model, granularity="hour", start=HOUR, end=HOUR + timedelta(hours=1)
    )

    assert len(windows) == 1
    window = windows[0]
    assert (window.rows, window.requests, window.role) == (50_000, 500, "primary")
    assert window.end == HOUR + timedelta(hours=1)
    assert _alarms(window) == []
    assert set(window.columns) == {"amount", "age", "city"}
    assert set(window.outputs) == {"prediction", "proba__no", "proba__yes"}
    for column in window.columns.values():
        assert column["psi"] < 0.02
    assert window.columns["city"]["js"] < 0.02
    assert window.columns["amount"]["ks"] < 0.05


def test_each_shift_moves_only_its_column(referenced: Any) -> None:
    moved = rows_like_training(3000, seed=11)
    moved["amount"] += 30  # two standard deviations
    added = rows_like_training(3000, seed=12)
    added.loc[added.sample(frac=0.3, random_state=0).index, "city"] = "berlin"
    holes = rows_like_training(3000, seed=13)
    holes["age"] = holes["age"].astype(object)
    holes.loc[holes.sample(frac=0.1, random_state=0).index, "age"] = None
    hours = [HOUR + timedelta(hours=k) for k in range(3)]
    for frame, at in zip([moved, added, holes], hours, strict=True):
        _hour(referenced, frame, at)

    windows_compute(
        model=referenced.model,
        granularity="hour",
        start=hours[0],
        end=hours[-1] + timedelta(hours=1),
    )

    mean, category, nulls = (_window(referenced, at) for at in hours)
    assert [a for a in _alarms(mean) if a.startswith("in:")] == ["in:amount:psi"]
    assert mean.columns["amount"]["out_of_range"] > 0.02
    assert mean.columns["amount"]["psi"] > 1
    assert mean.columns["amount"]["ks"] > 0.5
    assert mean.columns["amount"]["ks_pvalue"] < 1e-6
    assert [a for a in _alarms(category) if a.startswith("in:")] == [
        "in:city:psi",
        "in:city:unknown_categories",
    ]
    assert category.columns["city"]["unknown_categories"] == pytest.approx(0.3, abs=0.01)
    assert category.columns["city"]["js"] > 0.3
    assert [a for a in _alarms(nulls) if a.startswith("in:")] == ["in:age:null_rate"]
    assert nulls.columns["age"]["null_rate"] == pytest.approx(0.1, abs=0.005)
    assert nulls.columns["age"]["psi"] < 0.05


def test_figures_equal_scipy_on_the_same_values(referenced: Any) -> None:
    live = rows_like_training(4000, seed=21)
    live["amount"] += 5
    _hour(referenced, live, HOUR)

    window = windows_compute(
        model=referenced.model, granularity="hour", start=HOUR, end=HOUR + timedelta(hours=1)
    )[0]

    found = ReferenceProfile.objects.get(version=referenced)
    profile = found.profile["columns"]
    sample = pd.read_parquet(found.sample.path)
    amount = window.columns["amount"]
    inner = profiles.inner_edges(profile["amount"])
    counts = np.bincount(np.searchsorted(inner, live["amount"], side="right"), minlength=10)
    assert amount["counts"] == counts.tolist()
    p = np.maximum(np.array(profile["amount"]["counts"]) / 5000, drift.PSI_EPSILON)
    q = np.maximum(counts / 4000, drift.PSI_EPSILON)
    assert amount["psi"] == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    tested = stats.ks_2samp(sample["in__amount"], live["amount"])
    assert amount["ks"] == pytest.approx(tested.statistic)
    assert amount["ks_pvalue"] == pytest.approx(tested.pvalue)
    reference_shares = profile["city"]["categories"]
    live_shares = live["city"].value_counts(normalize=True)
    cities = sorted(reference_shares)
    assert window.columns["city"]["js"] == pytest.approx(
        distance.jensenshannon(
            [reference_shares[c] for c in cities], [live_shares[c] for c in cities], base=2
        )
    )
    low, high = profile["amount"]["min"], profile["amount"]["max"]
    outside = ((live["amount"] < low) | (live["amount"] > high)).mean()
    assert amount["out_of_range"] == pytest.approx(outside)


def test_days_roles_recomputation_and_no_reference(referenced: Any) -> None:
    for k in range(3):
        _hour(referenced, rows_like_training(400, seed=30 + k), HOUR + timedelta(hours=k))
    _hour(referenced, rows_like_training(300, seed=40), HOUR, role="canary")
    day = HOUR.replace(hour=0)

    first = windows_compute(
        model=referenced.model, granularity="day", start=HOUR, end=HOUR + timedelta(hours=1)
    )
    again = windows_compute(
        model=referenced.model, granularity="day", start=HOUR, end=HOUR + timedelta(hours=1)
    )

    assert [(w.role, w.start, w.rows) for w in first] == [
        ("canary", day, 300),
        ("primary", day, 1200),
    ]
    assert [w.pk for w in again] == [w.pk for w in first]
    assert MonitoringWindow.objects.count() == 2
    # quiet windows get quality figures but no drift figures (too few rows to judge)
    hourly = windows_compute(
        model=referenced.model, granularity="hour", start=HOUR, end=HOUR + timedelta(hours=1)
    )
    canary = next(w for w in hourly if w.role == "canary")
    assert canary.columns["amount"]["null_rate"] == 0
    assert "counts" in canary.columns["amount"]
    assert "psi" in canary.columns["amount"]  # 300 rows: enough
    # nothing logged in the range: no window
    later = HOUR + timedelta(days=3)
    assert windows_compute(model=referenced.model, granularity="hour", start=later, end=later) == []
