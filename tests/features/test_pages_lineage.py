"""Lineage pages: entities, sources, services, groups and features link both ways along
sources → groups → features → services → model versions → jobs, each with a drawn graph;
the catalog shows freshness and sorts, filters and pages on the server."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from features import selectors
from features.models import OfflinePartition
from jobs.models import Job
from tenancy.services import grant_create
from tests.factories import (
    DataSourceFactory,
    EntityFactory,
    FeatureFactory,
    FeatureGroupFactory,
    FeatureServiceFactory,
    JobFactory,
    ModelVersionFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(user: Any) -> dict[str, Any]:
    """source → group → feature → service → model version, with an ingestion job of the group,
    a training-set job reading it and a batch job of the version; all of team `data`."""
    team = TeamFactory.create(name="data")
    source = DataSourceFactory.create(name="payments-src", owner=team)
    entity = EntityFactory.create(name="customer", owner=team)
    group = FeatureGroupFactory.create(
        name="customer_stats", entity=entity, source=source, owner=team, tags={"pii": "no"},
        availability={"daily_at": "02:00"},
    )  # fmt: skip
    spend = FeatureFactory.create(group=group, name="spend", tags={"unit": "eur"})
    FeatureFactory.create(group=group, name="visits", dtype="int64")
    service = FeatureServiceFactory.create(name="churn-svc", owner=team, features=[spend])
    version = ModelVersionFactory.create(model__name="churn", model__owner=team)
    version.feature_service = service
    version.save(update_fields=["feature_service"])
    ingestion = JobFactory.create(
        kind=Job.Kind.INGESTION, owner=team, params={"group_id": group.pk}, description="load"
    )
    training = JobFactory.create(
        kind=Job.Kind.TRAINING_SET, owner=team, params={"features": ["customer_stats:spend"]}
    )
    batch = JobFactory.create(
        kind=Job.Kind.BATCH_SCORING, owner=team, params={"model": "churn", "version": 1}
    )
    return {
        "source": source, "entity": entity, "group": group, "feature": spend, "service": service,
        "version": version, "jobs": [ingestion, training, batch],
    }  # fmt: skip


@pytest.fixture
def signed_in(client: Any, user: Any) -> Any:
    client.force_login(user)
    return client


@pytest.fixture
def outsider(client: Any) -> Any:
    """A signed-in member of another team."""
    rita = UserFactory.create(username="rita", teams=[TeamFactory.create(name="blue")])
    client.force_login(rita)
    return client


def _links(html: str) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', html))


PAGES = {
    "source": "/features/sources/payments-src/",
    "entity": "/features/entities/customer/",
    "group": "/features/groups/customer_stats/",
    "feature": "/features/groups/customer_stats/spend/",
    "service": "/features/services/churn-svc/",
}


@pytest.mark.parametrize("url", PAGES.values())
def test_lineage_pages_need_a_login(client, chain, url):
    assert client.get(url).status_code == 302


@pytest.mark.parametrize(
    "url",
    [
        "/features/sources/nope/",
        "/features/entities/nope/",
        "/features/services/nope/",
        "/features/groups/nope/",
    ],
)
def test_unknown_objects_are_404(signed_in, url):
    assert signed_in.get(url).status_code == 404


@pytest.mark.parametrize("kind", PAGES)
def test_each_page_draws_a_graph_linking_the_whole_chain(signed_in, chain, kind):
    # When the page of any object of the chain is opened
    html = signed_in.get(PAGES[kind]).content.decode()
    # Then it draws a graph whose boxes link to each step upstream and downstream
    assert '<svg class="lineage"' in html
    graph = html[html.index('<svg class="lineage"') : html.index("</svg>", html.index("lineage"))]
    links = _links(graph)
    assert PAGES["group"] in links
    assert PAGES["feature"] in links
    assert PAGES["service"] in links
    assert chain["version"].get_absolute_url() in links
    # the page's own object is outlined as the current node
    assert graph.count("node " + kind + " current") == 1
    # and the batch job of the version is in the graph
    assert chain["jobs"][2].get_absolute_url() in links


def test_source_page_links_to_the_groups_reading_it(signed_in, chain):
    transformed = FeatureGroupFactory.create(name="derived", owner=chain["group"].owner)
    transformed.transformation_sources.add(chain["source"])
    html = signed_in.get(PAGES["source"]).content.decode()
    assert PAGES["group"] in _links(html)
    assert "/features/groups/derived/" in _links(html)
    assert "transformation input" in html


def test_group_page_links_back_to_its_source_and_entity_and_on_to_services(signed_in, chain):
    html = signed_in.get(PAGES["group"]).content.decode()
    links = _links(html)
    assert PAGES["source"] in links
    assert PAGES["entity"] in links
    assert PAGES["service"] in links
    assert chain["version"].get_absolute_url() in links
    # the ingestion and training-set jobs of the group are in its graph
    assert chain["jobs"][0].get_absolute_url() in links
    assert chain["jobs"][1].get_absolute_url() in links


def test_service_page_lists_its_features_and_versions(signed_in, chain):
    html = signed_in.get(PAGES["service"]).content.decode()
    assert PAGES["feature"] in _links(html)
    assert "churn v1" in html
    # a feature of the group that is not in the service is not drawn
    assert "/features/groups/customer_stats/visits/" not in _links(html)


def test_json_fields_are_shown_formatted_not_as_python_dicts(signed_in, chain):
    chain["feature"].statistics = {"count": 1234567, "nulls": 0, "mean": 1.5}
    chain["feature"].save()
    group_html = signed_in.get(PAGES["group"]).content.decode()
    assert "{&#x27;pii&#x27;" not in group_html
    assert "{'pii'" not in group_html
    assert "&quot;pii&quot;: &quot;no&quot;" in group_html
    assert "&quot;daily_at&quot;: &quot;02:00&quot;" in group_html
    feature_html = signed_in.get(PAGES["feature"]).content.decode()
    assert "&quot;unit&quot;: &quot;eur&quot;" in feature_html
    assert "&quot;count&quot;: 1234567" in feature_html
    # and numbers carry separators
    assert "1,234,567" in feature_html


def test_another_teams_catalog_pages_open_but_their_jobs_stay_hidden(outsider, chain):
    # Metadata is readable by anyone signed in (as the API: GET /api/v1/features/...);
    # the jobs are another team's data: a 404 on /jobs/<id>/ and absent from the pages
    for url in PAGES.values():
        response = outsider.get(url)
        assert response.status_code == 200
        links = _links(response.content.decode())
        for job in chain["jobs"]:
            assert job.get_absolute_url() not in links
    assert outsider.get(chain["jobs"][0].get_absolute_url()).status_code == 404
    api = outsider.get("/api/v1/features/groups/customer_stats/")
    assert api.status_code == 200


def test_a_grant_lets_another_team_see_the_jobs_in_the_lineage(outsider, chain, user):
    # Given a grant of the ingestion job to team blue by its owner
    grant_create(team=TeamFactory.create(name="blue"), target=chain["jobs"][0])
    # Then blue's member sees it on the group page and in its graph
    html = outsider.get(PAGES["group"]).content.decode()
    assert chain["jobs"][0].get_absolute_url() in _links(html)
    assert chain["jobs"][2].get_absolute_url() not in _links(html)


# --- the catalog ------------------------------------------------------------------------------


def _partition(group: Any, available: Any) -> None:
    OfflinePartition.objects.create(
        group=group, path=f"p/{group.name}.parquet", rows=10, max_available_at=available,
        max_event_timestamp=available,
    )  # fmt: skip


def test_catalog_flags_a_group_whose_newest_row_is_older_than_its_rule_allows(signed_in, user):
    team = TeamFactory.create(name="data")
    fresh = FeatureGroupFactory.create(name="fresh", owner=team, availability={"daily_at": "02:00"})
    stale = FeatureGroupFactory.create(name="stale", owner=team, schedule="0 * * * *")
    FeatureFactory.create(group=fresh, name="a")
    FeatureFactory.create(group=stale, name="b")
    _partition(fresh, timezone.now() - timedelta(hours=20))
    _partition(stale, timezone.now() - timedelta(hours=5))
    html = signed_in.get("/features/").content.decode()
    rows = {m[0]: m[1] for m in re.findall(r'<tr data-group="(\w+)">(.*?)</tr>', html, re.S)}
    assert "20 hours old" in rows["fresh"]
    assert "badge stale" not in rows["fresh"]
    assert "5 hours old" in rows["stale"]
    assert 'class="badge stale"' in rows["stale"]


def test_freshness_rules():
    now = timezone.now()
    group = FeatureGroupFactory.build(schedule="*/15 * * * *")
    assert selectors.group_expected_seconds(group)[0] == 900
    assert (
        selectors.group_freshness(
            group=group, newest_available=now - timedelta(minutes=20), now=now
        ).stale
        is False
    )
    assert (
        selectors.group_freshness(
            group=group, newest_available=now - timedelta(minutes=31), now=now
        ).stale
        is True
    )
    nightly = FeatureGroupFactory.build(availability={"daily_at": "02:00"})
    assert selectors.group_expected_seconds(nightly)[0] == 86_400
    never = FeatureGroupFactory.build()
    assert (
        selectors.group_freshness(
            group=never, newest_available=now - timedelta(days=400), now=now
        ).stale
        is False
    )


def test_catalog_sorts_filters_and_pages(signed_in, user):
    team = TeamFactory.create(name="data")
    group = FeatureGroupFactory.create(name="wide", owner=team)
    for index in range(60):
        FeatureFactory.create(group=group, name=f"f{index:02d}", position=index)
    first = signed_in.get("/features/?sort=name").content.decode()
    assert ">f00</a>" in first
    assert ">f49</a>" in first
    assert ">f50</a>" not in first
    assert "page 1 of 2" in first
    assert "sort=name&amp;page=2" in first
    second = signed_in.get("/features/?sort=name&page=2").content.decode()
    assert ">f59</a>" in second
    assert ">f00</a>" not in second
    reverse = signed_in.get("/features/?sort=-name").content.decode()
    assert reverse.index(">f59</a>") < reverse.index(">f58</a>")
    assert ">f00</a>" not in reverse
    filtered = signed_in.get("/features/?q=f1&sort=-name").content.decode()
    assert ">f19</a>" in filtered
    assert ">f20</a>" not in filtered
    # the sort links keep the filter
    assert "q=f1&amp;sort=name" in filtered
    # an unknown sort or page is not an error
    assert signed_in.get("/features/?sort=bogus&page=x").status_code == 200


def test_a_feature_jobs_page_links_back_to_its_group(signed_in, chain):
    # given the group's ingestion job
    ingestion = chain["jobs"][0]
    # when its page is opened
    response = signed_in.get(f"/jobs/{ingestion.pk}/")
    # then it names and links the group it loaded
    assert response.status_code == 200
    assert chain["group"].get_absolute_url() in _links(response.content.decode())
