"""The registry's pages without a browser: a version's page, versions compared, aliases moved
with a confirmation step, the models list (archived hidden, sorted, paged), Try-it on any
version or alias and on a linked model, and the per-model charts; each with the tenancy rules
the API applies (tests/e2e/test_versions.py drives them in Chromium)."""

from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.test import Client
from sklearn.linear_model import LinearRegression

from registry.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel
from serving import selectors as serving_selectors
from serving.models import PredictionLog
from tests.factories import (
    FeatureFactory,
    FeatureGroupFactory,
    FeatureServiceFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def regressor(columns: list[str]) -> LinearRegression:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(30, len(columns))), columns=columns)
    return LinearRegression().fit(frame, frame.sum(axis=1))


def version(
    model: str,
    number: int,
    *,
    columns: tuple[str, ...] = ("a", "b"),
    metrics: dict[str, Any] | None = None,
    **fields: Any,
) -> ModelVersion:
    found: ModelVersion = ModelVersionFactory.create(
        model__name=model,
        version=number,
        estimator=regressor(list(columns)),
        input_example=[dict.fromkeys(columns, 1.5)],
        metrics=metrics or {},
        **fields,
    )
    return found


@pytest.fixture(autouse=True)
def _no_cached_resolution(settings: Any) -> None:
    settings.MLPLATFORM_ALIAS_TTL_SECONDS = 0
    serving_selectors.resolution_cache_clear()


@pytest.fixture
def member(client: Client) -> Client:
    """A member of the team `data` (which owns the factories' models) with the registry's
    permissions."""
    user = UserFactory.create(
        username="dana", teams=[TeamFactory.create(name="data")], apps=("registry",)
    )
    client.force_login(user)
    return client


@pytest.fixture
def outsider() -> Client:
    """A member of another team, with the registry's permissions."""
    user = UserFactory.create(
        username="omar", teams=[TeamFactory.create(name="other")], apps=("registry",)
    )
    client = Client()
    client.force_login(user)
    return client


# --- a version's page ------------------------------------------------------------------------


def test_version_page_shows_signature_metrics_libraries_example_engine_and_sha(member):
    # given
    found = version(
        "churn", 1, metrics={"rmse": 0.25}, library_versions={"sklearn": "1.9.1", "numpy": "2.3"}
    )

    # when
    response = member.get("/models/churn/versions/1/")

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="version-signature"' in html
    assert "<td>a</td>" in html
    assert "rmse" in html
    assert found.sha256 in html
    assert "<th>sklearn</th><td>1.9.1</td>" in html
    # the input example is JSON, indented, not Python's dict text
    assert "&quot;a&quot;: 1.5" in html
    assert "{&#x27;a&#x27;" not in html
    assert 'id="try-version"' in html
    assert 'id="download"' in html


def test_version_page_of_a_missing_version_or_model_is_404(member):
    version("churn", 1)

    assert member.get("/models/churn/versions/7/").status_code == 404
    assert member.get("/models/nope/versions/1/").status_code == 404


def test_rejected_version_offers_neither_try_it_nor_its_file(member, api_client_for_data):
    # given a rejected version
    version("churn", 1, status=ModelVersion.Status.REJECTED, status_message="Refused: os.system")

    # when its page and the model page are read
    page = member.get("/models/churn/versions/1/").content.decode()
    model_page = member.get("/models/churn/").content.decode()

    # then neither offers the file nor Try-it, and the download route refuses it
    assert 'id="download"' not in page
    assert 'id="try-version"' not in page
    assert "Refused: os.system" in page
    assert "/versions/1/artifact" not in model_page
    response = api_client_for_data.get("/api/v1/models/churn/versions/1/artifact")
    assert response.status_code == 409
    assert "rejected" in response.json()["detail"]


@pytest.fixture
def api_client_for_data() -> Any:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(
        UserFactory.create(username="api", teams=[TeamFactory.create(name="data")])
    )
    return client


def test_a_ready_version_can_still_be_downloaded(api_client_for_data):
    version("churn", 1)

    response = api_client_for_data.get("/api/v1/models/churn/versions/1/artifact")

    assert response.status_code == 200


def test_version_page_shows_its_feature_service_and_groups(member):
    # given a version linked to a service serving a group's feature
    group = FeatureGroupFactory.create(name="stats")
    service = FeatureServiceFactory.create(
        name="churn-features", features=[FeatureFactory.create(group=group, name="a")]
    )
    version("churn", 1, feature_service=service)

    # when
    html = member.get("/models/churn/versions/1/").content.decode()

    # then
    assert 'href="/features/services/churn-features/"' in html
    assert 'href="/features/groups/stats/"' in html


def test_prediction_log_preview_is_for_the_team_only(member, outsider):
    found = version("churn", 1)
    PredictionLog.objects.create(
        model=found.model,
        version=found,
        protocol="native",
        inputs={"a": [1], "b": [2]},
        outputs={"predictions": [3.0]},
        latency_ms=2.5,
    )

    mine = member.get("/models/churn/versions/1/").content.decode()
    theirs = outsider.get("/models/churn/versions/1/")

    assert 'id="log-preview"' in mine
    assert "logged requests" in mine
    assert theirs.status_code == 200  # metadata is readable by anyone signed in
    assert 'id="log-preview"' not in theirs.content.decode()


# --- compare ---------------------------------------------------------------------------------


def test_compare_highlights_the_best_value_per_metric_and_draws_a_chart(member):
    # given three versions: v2 has the best accuracy, v3 the lowest (best) rmse
    version("churn", 1, metrics={"accuracy": 0.80, "rmse": 0.5})
    version("churn", 2, metrics={"accuracy": 0.91, "rmse": 0.4})
    version("churn", 3, metrics={"accuracy": 0.85, "rmse": 0.3})

    # when
    response = member.get("/models/churn/compare/?v=1&v=2&v=3&metric=rmse")

    # then
    assert response.status_code == 200
    rows = dict(response.context["cmp"].metric_rows)
    assert [best for _, _, best in rows["accuracy"]] == [False, True, False]
    assert [best for _, _, best in rows["rmse"]] == [False, False, True]
    html = response.content.decode()
    assert html.count('class="best"') == 2
    assert 'id="metric-chart"' in html
    assert "<svg" in html
    assert "rmse by version" in html


def test_compare_lists_signature_differences(member):
    version("churn", 1, columns=("a", "b"))
    version("churn", 2, columns=("a", "c"))

    response = member.get("/models/churn/compare/?v=1&v=2")

    changes = {name: change for name, _, change in response.context["cmp"].columns}
    assert changes == {"a": "", "b": "removed", "c": "added"}


def test_compare_with_unknown_or_bad_versions_is_not_an_error(member):
    version("churn", 1)

    response = member.get("/models/churn/compare/?v=1&v=9&v=x")

    assert response.status_code == 200
    assert response.context["cmp"].missing == [9]
    assert 'id="pick-two"' in response.content.decode()


# --- aliases ---------------------------------------------------------------------------------


def test_alias_move_needs_a_confirmation_then_goes_through_the_service(member):
    # given production on v1
    v1 = version("churn", 1)
    version("churn", 2)
    ModelAlias.objects.create(model=v1.model, alias="production", version=v1)

    # when the move is asked for (GET): a confirmation, nothing changed
    ask = member.get("/models/churn/aliases/?action=set&alias=production&version=2")
    assert ask.status_code == 200
    assert 'id="alias-confirm"' in ask.content.decode()
    assert ModelAlias.objects.get(alias="production").version.version == 1

    # and when it is confirmed (POST)
    done = member.post(
        "/models/churn/aliases/",
        {"action": "set", "alias": "production", "version": 2, "confirm": "1"},
    )

    # then the alias moved, the change is recorded with its author, and the page offers a
    # rollback to v1
    assert done.status_code == 302
    assert ModelAlias.objects.get(alias="production").version.version == 2
    change = AliasChange.objects.get(alias="production", to_version=2)
    assert change.from_version == 1
    assert change.changed_by is not None
    assert change.changed_by.username == "dana"
    page = member.get("/models/churn/").content.decode()
    assert "?action=set&amp;alias=production&amp;version=1" in page
    assert "Roll back to v1" in page


def test_alias_delete_is_confirmed_and_recorded(member):
    v1 = version("churn", 1)
    ModelAlias.objects.create(model=v1.model, alias="staging", version=v1)

    ask = member.get("/models/churn/aliases/?action=delete&alias=staging")
    assert ModelAlias.objects.filter(alias="staging").exists()
    assert "Delete the alias" in ask.content.decode()
    member.post("/models/churn/aliases/", {"action": "delete", "alias": "staging", "confirm": "1"})

    assert not ModelAlias.objects.filter(alias="staging").exists()
    assert AliasChange.objects.filter(alias="staging", to_version=None).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "set", "alias": "production", "version": 2}, "only ready versions"),
        ({"action": "set", "alias": "production", "version": 9}, "has no version 9"),
        ({"action": "set", "alias": "Bad Alias!", "version": 1}, "alias"),
        ({"action": "set", "alias": "production"}, "Choose the version"),
        ({"action": "delete", "alias": "canary"}, "no alias"),
        ({"action": "explode", "alias": "production"}, "action"),
    ],
)
def test_alias_form_errors_are_form_errors(member, data, message):
    # given v1 ready, v2 pending
    version("churn", 1)
    version("churn", 2, status=ModelVersion.Status.PENDING)

    # when a bad change is confirmed
    response = member.post("/models/churn/aliases/", {**data, "confirm": "1"})

    # then a 400 page saying why, and no alias
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ModelAlias.objects.exists()


def test_another_teams_aliases_cannot_be_moved(outsider):
    v1 = version("churn", 1)
    version("churn", 2)
    ModelAlias.objects.create(model=v1.model, alias="production", version=v1)

    asked = outsider.get("/models/churn/aliases/?action=set&alias=production&version=2")
    posted = outsider.post(
        "/models/churn/aliases/",
        {"action": "set", "alias": "production", "version": 2, "confirm": "1"},
    )
    deleted = outsider.post(
        "/models/churn/aliases/", {"action": "delete", "alias": "production", "confirm": "1"}
    )

    assert asked.status_code == 403
    assert posted.status_code == 403
    assert deleted.status_code == 403
    assert ModelAlias.objects.get(alias="production").version.version == 1
    assert 'id="alias-form"' not in outsider.get("/models/churn/").content.decode()


def test_alias_pages_of_an_unknown_model_are_404(member):
    assert member.get("/models/nope/aliases/?action=delete&alias=x").status_code == 404
    assert member.get("/models/nope/compare/?v=1").status_code == 404


# --- the models list -------------------------------------------------------------------------


def test_archived_models_are_hidden_unless_asked_for(member):
    RegisteredModelFactory.create(name="live")
    RegisteredModelFactory.create(name="old", tags={"archived": "2025"})
    RegisteredModelFactory.create(name="revived", tags={"archived": "false"})

    hidden = member.get("/models/")
    shown = member.get("/models/?archived=1")

    assert [m.name for m in hidden.context["page"]] == ["live", "revived"]
    assert [m.name for m in shown.context["page"]] == ["live", "old", "revived"]


def test_models_list_sorts_and_pages_on_the_server(member):
    for index in range(30):
        RegisteredModelFactory.create(name=f"m{index:02d}")
    version("m05", 1)
    version("m05", 2)

    first = member.get("/models/?sort=-name")
    second = member.get("/models/?sort=-name&page=2")
    by_versions = member.get("/models/?sort=-versions")
    unknown = member.get("/models/?sort=drop+table&page=99")

    assert [m.name for m in first.context["page"]][:2] == ["m29", "m28"]
    assert len(first.context["page"]) == 25
    assert [m.name for m in second.context["page"]] == [f"m{i:02d}" for i in range(4, -1, -1)]
    assert by_versions.context["page"][0].name == "m05"
    assert by_versions.context["page"][0].version_count == 2
    assert unknown.status_code == 200
    assert 'rel="next"' in first.content.decode()


def test_a_bad_tag_filter_is_a_message_not_a_500(member):
    response = member.get("/models/?tag=a__b")

    assert response.status_code == 200
    assert "tag:" in response.context["error"]


# --- Try-it targets ------------------------------------------------------------------------


def test_try_it_targets_a_version_or_an_alias(member):
    # given production on v2, staging on v1
    v1 = version("churn", 1)
    v2 = version("churn", 2)
    ModelAlias.objects.create(model=v1.model, alias="production", version=v2)
    ModelAlias.objects.create(model=v1.model, alias="staging", version=v1)

    default = member.get("/serving/models/churn/try/")
    pinned = member.post("/serving/models/churn/try/?version=1", {"a": 1.0, "b": 2.0})
    staged = member.get("/serving/models/churn/try/?alias=staging")

    assert default.context["version"].version == 2
    assert pinned.context["version"].version == 1
    assert pinned.context["has_result"] is True
    assert staged.context["version"].version == 1
    assert 'id="try-target"' in default.content.decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("version=abc", "not a version number"),
        ("version=9", "no version 9"),
        ("alias=nope", "no alias"),
        ("version=1&alias=staging", "either a version or an alias"),
        ("version=2", "rejected"),
    ],
)
def test_try_it_with_a_bad_target_says_why(member, query, message):
    version("churn", 1)
    version("churn", 2, status=ModelVersion.Status.REJECTED)

    response = member.get(f"/serving/models/churn/try/?{query}")

    assert response.status_code == 200
    assert message in response.context["error"]


def test_try_it_of_a_linked_model_asks_for_entity_keys_not_features(member):
    # given a version whose features a, b come from a service keyed by customer_id; c is sent
    group = FeatureGroupFactory.create(
        name="stats", entity__join_keys=["customer_id"], key_dtypes={"customer_id": "int64"}
    )
    service = FeatureServiceFactory.create(
        name="churn-features",
        features=[
            FeatureFactory.create(group=group, name="a"),
            FeatureFactory.create(group=group, name="b"),
        ],
    )
    version("churn", 1, columns=("a", "b", "c"), feature_service=service)

    # when
    response = member.get("/serving/models/churn/try/")

    # then the form asks for the key (an integer) and the request-time column
    form = response.context["form"]
    assert list(form.fields) == ["customer_id", "c"]
    assert form.fields["customer_id"].__class__.__name__ == "IntegerField"
    assert 'id="linked-note"' in response.content.decode()


# --- per-model charts ----------------------------------------------------------------------


def test_model_charts_draw_the_prediction_log_for_the_team_only(member, outsider):
    found = version("churn", 1)
    for latency in (1.0, 2.0, 9.0):
        PredictionLog.objects.create(
            model=found.model,
            version=found,
            protocol="native",
            inputs={"a": [1]},
            outputs={"predictions": [latency]},
            latency_ms=latency,
        )

    charts = {
        kind: member.get(f"/serving/models/churn/charts/{kind}.svg")
        for kind in ("requests", "latency", "outputs")
    }
    refused = outsider.get("/serving/models/churn/charts/requests.svg")
    unknown = member.get("/serving/models/churn/charts/nope.svg")

    for response in charts.values():
        assert response.status_code == 200
        assert response["Content-Type"].startswith("image/svg+xml")
        assert b"<circle" in response.content
    assert b"p95" in charts["latency"].content
    assert refused.status_code == 403
    assert unknown.status_code == 404
    assert 'id="chart-requests"' in member.get("/models/churn/").content.decode()
    assert 'id="chart-requests"' not in outsider.get("/models/churn/").content.decode()


def test_model_page_links_versions_and_offers_compare(member):
    version("churn", 1)
    RegisteredModel.objects.filter(name="churn").update(tags={"archived": "yes"})

    html = member.get("/models/churn/").content.decode()

    assert 'href="/models/churn/versions/1/"' in html
    assert 'form="compare-form"' in html
    assert 'id="archived"' in html
