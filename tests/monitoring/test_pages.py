"""The Monitoring tab of a model, and the alert badges on the model page and in the feature
catalog, read through Django's test client as a signed-in user would."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from jobs.models import Job
from monitoring.models import Alert, AlertRule, MonitoringWindow, ReferenceProfile
from tests.conftest import team_member
from tests.factories import (
    FeatureFactory,
    FeatureGroupFactory,
    ModelAliasFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db


def found(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    """The first match of `pattern` in `text`, which must be there."""
    match = re.search(pattern, text, flags)
    assert match is not None, f"{pattern!r} not found"
    return match


START = datetime(2026, 11, 30, 6, tzinfo=UTC)
EDGES = [40.0, 70.0, 80.0, 88.0, 94.0, 100.0, 106.0, 112.0, 120.0, 130.0, 160.0]


def browser_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response: Any) -> str:
    return response.content.decode()


def reference_of(version: Any) -> ReferenceProfile:
    return ReferenceProfile.objects.create(
        version=version,
        source=ReferenceProfile.Source.UPLOAD,
        rows=2000,
        profile={
            "columns": {
                "amount": {
                    "kind": "numeric", "count": 2000, "null_rate": 0.0, "min": 40.0,
                    "max": 160.0, "edges": EDGES, "counts": [200] * 10,
                },
                "age": {
                    "kind": "numeric", "count": 2000, "null_rate": 0.0, "min": 10.0,
                    "max": 70.0, "edges": [10.0 + 6 * i for i in range(11)],
                    "counts": [200] * 10,
                },
                "city": {
                    "kind": "categorical", "count": 2000, "null_rate": 0.0,
                    "categories": {"paris": 0.5, "lyon": 0.3, "nice": 0.2},
                },
            },
            "outputs": {
                "prediction": {
                    "kind": "categorical", "count": 2000, "null_rate": 0.0,
                    "categories": {"no": 0.55, "yes": 0.45},
                }
            },
        },
    )  # fmt: skip


def window_of(version: Any, hour: int, *, psi: float = 0.02, **extra: Any) -> MonitoringWindow:
    """A window `hour` hours after START; the latest one carries the drift and the nulls."""
    start = START + timedelta(hours=hour)
    columns = {
        "amount": {"rows": 500, "null_rate": 0.0, "out_of_range": 0.0, "psi": psi, "ks": 0.04,
                   "ks_pvalue": 0.5, "counts": [50] * 10},
        "age": {"rows": 500, "null_rate": 0.0, "out_of_range": 0.0, "psi": 0.01, "ks": 0.02,
                "ks_pvalue": 0.9, "counts": [50] * 10},
        "city": {"rows": 500, "null_rate": 0.0, "unknown_categories": 0.0, "psi": 0.01,
                 "js": 0.01, "categories": {"paris": 0.5, "lyon": 0.3, "nice": 0.2}},
    }  # fmt: skip
    columns.update(extra.pop("columns", {}))
    return MonitoringWindow.objects.create(
        model=version.model,
        version=version,
        granularity=extra.pop("granularity", MonitoringWindow.Granularity.HOUR),
        start=start,
        end=start + timedelta(hours=1),
        requests=5,
        rows=500,
        columns=columns,
        outputs={
            "prediction": {
                "rows": 500,
                "null_rate": 0.0,
                "psi": psi / 2,
                "js": 0.02,
                "categories": {"no": 0.5 - hour / 100, "yes": 0.5 + hour / 100},
            },
        },
        **extra,
    )


def monitored(version: Any) -> list[MonitoringWindow]:
    """Six hourly windows of `version`: steady, then `amount` shifted, `age` with nulls, a new
    city, age rejected, features compared with the offline store and feedback joined."""
    reference_of(version)
    windows = [
        window_of(version, hour, accuracy={"labelled": 40, "accuracy": 0.9 - hour / 100})
        for hour in range(5)
    ]
    shifted_amount = [0, 0, 10, 20, 40, 60, 80, 100, 100, 90]
    windows.append(
        window_of(
            version,
            5,
            psi=0.71,
            columns={
                "amount": {"rows": 500, "null_rate": 0.0, "out_of_range": 0.12, "psi": 0.71,
                           "ks": 0.42, "ks_pvalue": 0.0, "counts": shifted_amount},
                "age": {"rows": 500, "null_rate": 0.2, "out_of_range": 0.0, "psi": 0.03,
                        "ks": 0.03, "ks_pvalue": 0.6, "counts": [40] * 10},
                "city": {"rows": 500, "null_rate": 0.0, "unknown_categories": 0.25, "psi": 0.3,
                         "js": 0.3, "categories": {"paris": 0.4, "lyon": 0.2, "nice": 0.15,
                                                   "__other__": 0.25}},
            },
            rejections={"age": 7, "city": 2},
            skew={"spend_30d": {"compared": 200, "mismatches": 30, "rate": 0.15}},
            accuracy={"labelled": 40, "accuracy": 0.71},
        )
    )  # fmt: skip
    return windows


@pytest.fixture
def member(django_user_model: Any, team: Any) -> Any:
    return team_member(django_user_model, "ana", team, apps=("registry", "serving"))


@pytest.fixture
def production(churn: Any) -> Any:
    ModelAliasFactory.create(version=churn, alias="production")
    return churn


def tab(client: Client, query: str = "", name: str = "churn") -> Any:
    return client.get(f"/models/{name}/monitoring/{query}")


def svg(body: str, css: str) -> list[str]:
    """The inline SVG charts of one kind in a page."""
    return re.findall(rf'<svg class="chart {css}".*?</svg>', body, flags=re.S)


def test_tab_draws_the_drift_heatmap_of_production_with_axes_and_legend(
    member: Any, production: Any, churn_estimator: Any
) -> None:
    monitored(production)
    ModelVersionFactory.create(model=production.model, estimator=churn_estimator)

    body = text(tab(browser_for(member)))

    (heatmap,) = svg(body, "heatmap")
    assert "v1" in found(r'aria-label="([^"]+)"', heatmap).group(1)  # production, not v2
    assert len(re.findall(r'<rect class="cell"', heatmap)) == 3 * 6  # columns by windows
    assert "amount · 2026-11-30 11:00: PSI 0.71" in heatmap
    assert found(r'<rect class="cell"[^>]*fill="#c92a2a" data-value="0.71"', heatmap)
    for label in ("input column", "window start (hour, UTC)", "PSI", "≥ 0.5", "no value"):
        assert label in heatmap
    # row labels on the left, hour ticks along the bottom
    assert found(r'text-anchor="end"[^>]*>amount<title>amount</title>', heatmap)
    assert ">06:00</text>" in heatmap


def test_tab_overlays_reference_and_live_per_column(member: Any, production: Any) -> None:
    monitored(production)

    body = text(tab(browser_for(member)))

    amount = found(r'data-column="amount".*?</figure>', body, flags=re.S).group(0)
    (histogram,) = svg(amount, "overlaid-histogram")
    assert 'data-series="reference"' in histogram
    assert 'data-series="live (latest window)"' in histogram
    # live shares of the shifted window: 100 of 500 rows in the bin [120, 130]
    assert "live (latest window) [120, 130]: 0.2</title>" in histogram
    assert "reference [40, 70]: 0.1</title>" in histogram
    assert 'class="x-label"' in histogram
    assert ">amount</text>" in histogram
    assert ">share of rows</text>" in histogram
    assert "PSI 0.710" in amount
    assert "KS 0.420" in amount
    city = found(r'data-column="city".*?</figure>', body, flags=re.S).group(0)
    (bars,) = svg(city, "grouped-bars")
    # values the reference never saw are counted together, under a readable name
    assert "(other) · live (latest window): 0.25</title>" in bars
    assert "(other) · reference: 0</title>" in bars
    assert "__other__" not in bars
    assert "paris · reference: 0.5</title>" in bars


def test_tab_draws_predictions_over_time_quality_skew_and_accuracy(
    member: Any, production: Any
) -> None:
    monitored(production)

    body = text(tab(browser_for(member)))

    prediction = found(r'id="prediction-chart".*?</figure>', body, flags=re.S).group(0)
    (lines,) = svg(prediction, "line-chart")
    assert 'data-series="yes"' in lines
    assert 'data-series="no"' in lines
    assert ">share of predictions</text>" in lines
    assert ">window start (UTC)</text>" in lines
    assert 'id="prediction-drift-chart"' in body
    # the latest window's quality, figures above the rules' thresholds flagged
    age = found(r'<tr data-column="age">.*?</tr>', body, flags=re.S).group(0)
    assert '<td class="worse">0.200</td>' in age  # null rate above 0.05
    amount = found(r'<tr data-column="amount">.*?</tr>', body, flags=re.S).group(0)
    assert '<td class="worse">0.710</td>' in amount  # PSI above 0.2
    assert 'id="null-rate-chart"' in body
    rejections = found(r'id="rejections".*?</table>', body, flags=re.S).group(0)
    assert found(r"<code>age</code></td><td>7</td>.*<code>city</code></td><td>2</td>", rejections)
    skew = found(r'id="skew-chart".*?</figure>', body, flags=re.S).group(0)
    assert "spend_30d: 0.15</title>" in skew
    assert ">mismatch rate</text>" in skew
    accuracy = found(r'id="accuracy-accuracy-chart".*?</figure>', body, flags=re.S).group(0)
    assert "11:00: 0.71</title>" in accuracy
    assert ">accuracy</text>" in accuracy
    assert 'id="labelled-chart"' in body


def test_a_models_own_rule_sets_what_is_flagged(member: Any, production: Any) -> None:
    monitored(production)
    AlertRule.objects.create(model=production.model, metric="psi", threshold=0.8)

    body = text(tab(browser_for(member)))

    amount = found(r'<tr data-column="amount">.*?</tr>', body, flags=re.S).group(0)
    assert "<td>0.710</td>" in amount


def test_tab_lists_alerts_firing_first_with_values_and_times(member: Any, production: Any) -> None:
    windows = monitored(production)
    rule = AlertRule.objects.create(model=production.model, metric="psi", threshold=0.2)
    old = Alert.objects.create(
        rule=rule, version=production, column="age", state=Alert.State.RESOLVED, value=0.25
    )
    Alert.objects.filter(pk=old.pk).update(resolved_at=old.started_at + timedelta(hours=1))
    Alert.objects.create(
        rule=rule, version=production, column="amount", value=0.71, window=windows[-1],
        message="amount: PSI 0.71 > 0.2",
    )  # fmt: skip

    body = text(tab(browser_for(member)))

    rows = re.findall(r'<tr data-state="(\w+)">(.*?)</tr>', body, flags=re.S)
    assert [state for state, _ in rows] == ["firing", "resolved"]
    assert "<td>amount</td>" in rows[0][1]
    assert "0.7100" in rows[0][1]
    assert "psi &gt; 0.2" in rows[0][1]
    assert "amount: PSI 0.71 &gt; 0.2" in rows[0][1]
    assert "<td>age</td>" in rows[1][1]
    assert "<time datetime=" in rows[1][1]


def test_empty_states_say_what_to_do(member: Any, production: Any) -> None:
    client = browser_for(member)

    body = text(tab(client))

    assert 'id="no-reference"' in body
    assert "/versions/1/reference" in body
    assert 'id="no-windows"' in body
    assert "Send traffic" in body
    assert 'id="no-alerts"' in body
    assert "<svg" not in body
    # windows, but no feedback and no feature service
    window_of(production, 0)
    body = text(tab(client))
    assert 'id="no-accuracy"' in body
    assert "/api/v1/models/churn/feedback" in body
    assert 'id="no-skew"' in body
    assert "reads no feature service" in body
    assert 'id="no-rejections"' in body
    assert len(svg(body, "heatmap")) == 1
    # live figures without a reference: the live side alone
    assert "Only live figures" in body


def test_a_model_without_versions_says_so(member: Any, team: Any) -> None:
    RegisteredModelFactory.create(name="empty", owner=team)

    body = text(tab(browser_for(member), name="empty"))

    assert 'id="no-version"' in body
    assert "<svg" not in body


def test_version_granularity_and_role_are_chosen_in_the_query(
    member: Any, production: Any, churn_estimator: Any
) -> None:
    monitored(production)
    canary = ModelVersionFactory.create(model=production.model, estimator=churn_estimator)
    window_of(canary, 0, role="canary", granularity=MonitoringWindow.Granularity.DAY)
    client = browser_for(member)

    body = text(tab(client, "?version=2&granularity=day"))

    (heatmap,) = svg(body, "heatmap")
    assert "v2 per day" in heatmap
    assert "as <strong>canary</strong>" in body
    assert '<option value="day" selected>' in body
    # unknown values fall back to production's hourly windows, never an error
    body = text(tab(client, "?version=nine&granularity=week&role=boss"))
    assert "v1 per hour" in svg(body, "heatmap")[0]


def test_rights_another_team_is_refused_and_unknown_models_are_404(
    django_user_model: Any, member: Any, production: Any
) -> None:
    monitored(production)
    outsider = team_member(
        django_user_model, "eve", TeamFactory.create(name="others"), apps=("registry", "serving")
    )
    client = browser_for(outsider)

    assert tab(client).status_code == 403
    assert client.get("/models/churn/monitoring/badge").status_code == 403
    assert client.post("/models/churn/monitoring/run").status_code == 403
    assert tab(browser_for(member), name="nope").status_code == 404
    anonymous = Client().get("/models/churn/monitoring/")
    assert anonymous.status_code == 302
    assert "/accounts/login/" in anonymous["Location"]
    assert "monitoring/badge" not in text(client.get("/models/churn/"))  # no badge loader


def test_model_page_links_the_tab_and_loads_the_alert_badge(member: Any, production: Any) -> None:
    windows = monitored(production)
    client = browser_for(member)

    page = text(client.get("/models/churn/"))
    assert 'href="/models/churn/monitoring/" id="monitoring-tab"' in page
    assert 'hx-get="/models/churn/monitoring/badge" hx-trigger="load"' in page
    assert text(client.get("/models/churn/monitoring/badge")).strip() == ""

    rule = AlertRule.objects.create(model=production.model, metric="null_rate", threshold=0.05)
    Alert.objects.create(rule=rule, version=production, column="age", value=0.2, window=windows[-1])
    badge = text(client.get("/models/churn/monitoring/badge"))

    assert 'id="alert-badge"' in badge
    assert "1 alert firing" in badge
    assert 'href="/models/churn/monitoring/"' in badge
    assert "null_rate age v1: 0.200" in badge
    Alert.objects.update(state=Alert.State.RESOLVED)
    assert text(client.get("/models/churn/monitoring/badge")).strip() == ""


def test_catalog_loads_a_badge_for_each_group_with_a_firing_alert(member: Any, team: Any) -> None:
    stale = FeatureGroupFactory.create(name="customer_stats", owner=team)
    fresh = FeatureGroupFactory.create(name="orders", owner=team)
    for group in (stale, fresh):
        FeatureFactory.create(group=group, name=f"{group.name}_x")
    Alert.objects.create(
        rule=AlertRule.objects.create(feature_group=stale, metric="stale"), value=7200
    )
    Alert.objects.create(
        rule=AlertRule.objects.create(feature_group=fresh, metric="stale"),
        state=Alert.State.RESOLVED,
    )
    client = browser_for(member)

    catalog = text(client.get("/features/"))
    loader = found(r'<div hx-get="([^"]+)" hx-trigger="load" hx-swap="none"', catalog)
    url = loader.group(1).replace("&amp;", "&")
    assert "group=customer_stats" in url
    assert "group=orders" in url
    assert '<span data-alert-group="customer_stats"></span>' in catalog

    badges = text(client.get(url))

    assert 'innerHTML:[data-alert-group="customer_stats"]' in badges
    assert 'class="badge failed group-alert"' in badges
    assert "orders" not in badges
    assert text(client.get("/models/monitoring/group-badges")).strip() == ""


def test_run_now_queues_the_job_and_links_it(
    django_user_model: Any, team: Any, production: Any
) -> None:
    editor = team_member(django_user_model, "rui", team, apps=("registry", "serving"))
    client = browser_for(editor)
    assert 'id="run-now"' in text(tab(client))

    response = client.post("/models/churn/monitoring/run", follow=True)

    job = Job.objects.get(kind=Job.Kind.MONITORING)
    assert job.params["model_id"] == production.model_id
    body = text(response)
    assert f'href="/jobs/{job.pk}/" id="run-job">job #{job.pk}</a>' in body
    assert found(rf'id="monitoring-jobs">.*job #{job.pk}', body)
    # a second click while it waits says so and queues nothing
    body = text(client.post("/models/churn/monitoring/run", follow=True))
    assert "already" in body
    assert Job.objects.filter(kind=Job.Kind.MONITORING).count() == 1
    assert client.get("/models/churn/monitoring/run").status_code == 405


def test_readers_without_change_rights_get_no_run_button(
    django_user_model: Any, team: Any, production: Any
) -> None:
    reader = team_member(django_user_model, "rita", team, apps=())

    response = tab(browser_for(reader))

    assert response.status_code == 200
    assert 'id="run-now"' not in text(response)
    assert browser_for(reader).post("/models/churn/monitoring/run").status_code == 403
    assert not Job.objects.filter(kind=Job.Kind.MONITORING).exists()


def test_a_regressor_gets_percentiles_over_time_and_its_error(member: Any, team: Any) -> None:
    version = ModelVersionFactory.create(model=RegisteredModelFactory(name="price", owner=team))
    edges = [float(e) for e in range(0, 110, 10)]
    ReferenceProfile.objects.create(
        version=version,
        source=ReferenceProfile.Source.EVALUATION,
        rows=1000,
        profile={
            "columns": {},
            "outputs": {"prediction": {"kind": "numeric", "edges": edges, "counts": [100] * 10}},
        },
    )
    for hour, counts in enumerate(([100] * 10, [0, 0, 0, 0, 0, 0, 0, 0, 500, 500])):
        start = START + timedelta(hours=hour)
        MonitoringWindow.objects.create(
            model=version.model, version=version, granularity="hour", start=start,
            end=start + timedelta(hours=1), rows=1000,
            outputs={"prediction": {"rows": 1000, "psi": 0.01 + hour, "counts": counts}},
            accuracy={"labelled": 30, "mae": 1.5 + hour, "rmse": 2.0 + hour},
        )  # fmt: skip

    body = text(tab(browser_for(member), name="price"))

    prediction = found(r'id="prediction-chart".*?</figure>', body, flags=re.S).group(0)
    # the median estimated from the bins: 50 for uniform counts, 90 when all sit in [80, 100]
    assert "06:00: 50</title>" in prediction
    assert "07:00: 90</title>" in prediction
    for series in ("90th percentile", "median", "10th percentile"):
        assert f'data-series="{series}"' in prediction
    assert 'id="accuracy-mae-chart"' in body
    assert 'id="accuracy-rmse-chart"' in body
    assert 'id="accuracy-accuracy-chart"' not in body


def test_names_from_the_traffic_are_escaped(member: Any, production: Any) -> None:
    hostile = '<script>alert("x")</script>'
    window_of(
        production,
        0,
        columns={hostile: {"rows": 1, "null_rate": 1.0, "psi": 0.5}},
        rejections={hostile: 3},
    )

    body = text(tab(browser_for(member)))

    assert hostile not in body
    assert "&lt;script&gt;" in body
