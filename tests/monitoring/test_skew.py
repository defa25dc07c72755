"""Training/serving skew: the feature values a version was served online, as logged, compared
with the offline store's point-in-time answer for the same customer at the request's time.
Online values made to disagree with the offline ones for a quarter of the customers give that
feature a mismatch rate of a quarter (and the other feature none), and a skew alert."""

import io
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from sklearn.linear_model import LinearRegression

from features import online, services
from features.ingestion import AVAILABLE, EVENT
from features.models import FeatureGroup
from tests.conftest import client_for, team_member
from tests.factories import (
    EntityFactory,
    FeatureFactory,
    FeatureGroupFactory,
    FeatureServiceFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)
from tests.monitoring.test_run import log_everything, run

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOMERS = 200


def offline_values() -> pd.DataFrame:
    ids = np.arange(1, CUSTOMERS + 1)
    return pd.DataFrame({"customer_id": ids, "f1": ids * 0.1, "f2": ids.astype(float)})


def stats_group(team: Any) -> FeatureGroup:
    """Group `stats` (f1, f2 by customer_id) with the offline values of a day ago."""
    entity = EntityFactory.create(name="customer", join_keys=["customer_id"], owner=team)
    group: FeatureGroup = FeatureGroupFactory.create(name="stats", entity=entity, owner=team)
    for position, name in enumerate(["f1", "f2"]):
        FeatureFactory.create(group=group, name=name, position=position)
    online.store().clear(group.pk)  # a Redis store outlives the test database
    frame = offline_values()
    frame["event_timestamp"] = (timezone.now() - timedelta(days=1)).isoformat()
    data = frame.to_csv(index=False).encode()
    services.ingestion_start(group=group, file=io.BytesIO(data), size=len(data))
    return group


@pytest.fixture
def linked(team: Any) -> Any:
    """Model `churn` v1, a regressor on f1 and f2, linked to a service of `stats`."""
    group = stats_group(team)
    frame = offline_values()
    estimator = LinearRegression().fit(frame[["f1", "f2"]], frame["f1"] + frame["f2"])
    model = RegisteredModelFactory.create(name="churn", owner=team)
    return ModelVersionFactory.create(
        model=model,
        estimator=estimator,
        input_example=[{"f1": 0.5, "f2": 1.0}],
        feature_service=FeatureServiceFactory.create(
            name="churn-features", owner=team, features=list(group.features.all())
        ),
    )


def log_served(version: Any, served: pd.DataFrame) -> None:
    """The log's rows for one-row requests whose features were read online (`served`)."""
    at = timezone.now()
    n = len(served)
    table = pa.table(
        {
            "request_id": [f"s{i}" for i in range(n)],
            "ts": pa.array([at] * n, pa.timestamp("us", tz="UTC")),
            "version": pa.array([version.version] * n, pa.int32()),
            "role": ["primary"] * n,
            "protocol": ["native"] * n,
            "row": pa.array([0] * n, pa.int32()),
            "latency_ms": [1.0] * n,
            "key__customer_id": [str(c) for c in served["customer_id"]],
            "in__f1": served["f1"].astype(float),
            "in__f2": served["f2"].astype(float),
            "out__prediction": (served["f1"] + served["f2"]).astype(float),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    default_storage.save(
        f"prediction-log/model={version.model_id}/date={at:%Y-%m-%d}/hour={at:%H}/"
        f"{version.version}-skew.parquet",
        ContentFile(buffer.getvalue()),
    )


def test_online_values_that_disagree_give_a_mismatch_rate_and_an_alert(
    celery_worker: Any, django_user_model: Any, team: Any, linked: Any
) -> None:
    ana = client_for(team_member(django_user_model, "ana", team, apps=("registry",)))
    rules = ana.put(
        "/api/v1/models/churn/alert-rules/",
        [{"metric": "skew", "threshold": 0.1}],
        format="json",
    )
    assert rules.status_code == 200, rules.content
    # served online: f1 off by one for every fourth customer, f2 as offline
    served = offline_values()
    served.loc[served["customer_id"] % 4 == 0, "f1"] += 1.0
    log_served(linked, served)

    summary = run(ana)

    skew = summary["versions"][0]["windows"]["day"]["skew"]
    assert skew["f1"]["compared"] == CUSTOMERS
    assert skew["f1"]["mismatches"] == CUSTOMERS // 4
    assert skew["f1"]["rate"] == pytest.approx(0.25)
    example = skew["f1"]["example"]
    assert int(example["customer_id"]) % 4 == 0
    assert example["online"] == pytest.approx(example["offline"] + 1.0)
    assert skew["f2"] == {"compared": CUSTOMERS, "mismatches": 0, "rate": 0.0}
    assert summary["versions"][0]["windows"]["hour"]["skew"]["f1"]["rate"] == pytest.approx(0.25)
    firing = [a for a in summary["alerts"] if a["state"] == "firing"]
    assert [(a["metric"], a["column"]) for a in firing] == [("skew", "f1")]
    assert firing[0]["value"] == pytest.approx(0.25)


def test_skew_of_features_served_through_the_predict_api(
    celery_worker: Any, django_user_model: Any, team: Any, linked: Any, settings: Any
) -> None:
    # given the offline values materialised online, then newer online values of f1 for every
    # fourth customer that the offline store never got
    log_everything(linked.model, settings)
    group = FeatureGroup.objects.get(name="stats")
    services.materialise_group(group=group)
    recent = (timezone.now() - timedelta(minutes=1)).replace(tzinfo=None)
    online.online_write(
        group=group,
        rows=[
            {
                "customer_id": int(row["customer_id"]),
                EVENT: recent,
                AVAILABLE: recent,
                "f1": row["f1"] + 5.0,
                "f2": row["f2"],
            }
            for row in offline_values().to_dict("records")
            if row["customer_id"] % 4 == 0
        ],
    )
    ana = client_for(team_member(django_user_model, "ana", team, apps=("registry",)))
    ids = offline_values()["customer_id"].tolist()

    # when every customer is scored by key alone, the features read online
    response = ana.post(
        "/api/v1/models/churn/predict",
        {"instances": [{"customer_id": int(i)} for i in ids]},
        format="json",
    )
    assert response.status_code == 200, response.content
    summary = run(ana)

    skew = summary["versions"][0]["windows"]["day"]["skew"]
    assert skew["f1"]["compared"] == CUSTOMERS
    assert skew["f1"]["rate"] == pytest.approx(0.25)
    assert skew["f1"]["example"]["online"] == pytest.approx(skew["f1"]["example"]["offline"] + 5.0)
    assert skew["f2"]["rate"] == 0.0


def test_skew_rules_name_features_of_the_service(
    django_user_model: Any, team: Any, linked: Any
) -> None:
    ana = client_for(team_member(django_user_model, "ana", team, apps=("registry",)))
    response = ana.put(
        "/api/v1/models/churn/alert-rules/",
        [{"metric": "skew", "column": "nope", "threshold": 0.1}],
        format="json",
    )
    assert response.status_code == 400
    assert "nope" in response.json()["detail"]
