"""Freshness of the feature groups a model reads: a group loaded nightly whose newest row is
days old raises a `stale` alert at the monitoring run, which resolves once fresh rows arrive;
a group without a schedule or availability rule gets no rule."""

import io
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from django.test import Client
from django.utils import timezone

from features import services
from features.models import FeatureGroup
from monitoring.models import AlertRule
from tests.conftest import client_for, team_member
from tests.factories import (
    EntityFactory,
    FeatureFactory,
    FeatureGroupFactory,
    FeatureServiceFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)
from tests.monitoring.test_run import run

pytestmark = pytest.mark.django_db(transaction=True)


def ingest(group: FeatureGroup, *, days_ago: float) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "f1": [0.1, 0.2],
            "event_timestamp": (timezone.now() - timedelta(days=days_ago)).isoformat(),
        }
    )
    data = frame.to_csv(index=False).encode()
    services.ingestion_start(group=group, file=io.BytesIO(data), size=len(data))


def test_a_stale_group_alerts_and_resolves_when_fresh_rows_arrive(
    celery_worker: Any, django_user_model: Any, team: Any, settings: Any
) -> None:
    entity = EntityFactory.create(name="customer", join_keys=["customer_id"], owner=team)
    nightly = FeatureGroupFactory.create(
        name="nightly", entity=entity, owner=team, availability={"daily_at": "02:00"}
    )
    adhoc = FeatureGroupFactory.create(name="adhoc", entity=entity, owner=team)
    features = [
        FeatureFactory.create(group=nightly, name="f1"),
        FeatureFactory.create(group=adhoc, name="g1"),
    ]
    model = RegisteredModelFactory.create(name="churn", owner=team)
    ModelVersionFactory.create(
        model=model,
        feature_service=FeatureServiceFactory.create(name="svc", owner=team, features=features),
    )
    ingest(nightly, days_ago=5)  # loaded nightly: four to five days old
    ana = client_for(team_member(django_user_model, "ana", team, apps=("registry",)))

    summary = run(ana)

    groups = {g["group"]: g for g in summary["groups"]}
    assert groups["nightly"]["stale"] is True
    assert groups["nightly"]["expected_seconds"] == 86_400
    assert groups["nightly"]["age_seconds"] > 3 * 86_400
    [alert] = groups["nightly"]["alerts"]
    assert (alert["metric"], alert["state"], alert["group"]) == ("stale", "firing", "nightly")
    assert alert["value"] > 3
    assert not AlertRule.objects.filter(feature_group__name="adhoc").exists()
    settings.MLPLATFORM_METRICS_TOKEN = "scrape-secret"
    text = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").content.decode()
    assert 'mlplatform_feature_group_stale{group="nightly"} 1.0' in text
    assert 'mlplatform_alert_firing{column="",group="nightly",metric="stale",model=""' in text

    # when rows of the last hour arrive, the group is fresh again: resolved
    ingest(nightly, days_ago=1 / 24)
    summary = run(ana)

    groups = {g["group"]: g for g in summary["groups"]}
    assert groups["nightly"]["stale"] is False
    [alert] = groups["nightly"]["alerts"]
    assert alert["state"] == "resolved"
    assert alert["resolved_at"]
    text = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").content.decode()
    assert 'mlplatform_feature_group_stale{group="nightly"} 0.0' in text
