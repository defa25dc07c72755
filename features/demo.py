"""Demo content loaded by `python manage.py demo` (idempotent).

A `customer` entity, a synthetic source of daily customer snapshots (fixed seed), the
`customer_stats` group loaded nightly at 02:00, the `customer-churn` feature service, its online
store, and a `customer-churn` model trained on a point-in-time training set and linked to the
service, so predicting by `customer_id` alone works at once.
"""

import io
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from features import online, services, training_sets
from features.models import DataSource, Entity, FeatureGroup, FeatureService
from jobs import services as jobs
from jobs.models import Job
from registry.demo import demo_model_ensure
from tenancy.services import owner_for_create

ENTITY = "customer"
SOURCE = "customer-daily-snapshots"
GROUP = "customer_stats"
SERVICE = "customer-churn"
MODEL = "customer-churn"
CUSTOMERS = 200
DAYS = 60
FEATURES = [
    {"name": "orders_30d", "dtype": "int64", "description": "Orders in the last 30 days."},
    {"name": "spend_30d", "dtype": "float64", "description": "Spend in the last 30 days (EUR)."},
    {
        "name": "days_since_last_order",
        "dtype": "float64",
        "description": "Days since the most recent order.",
    },
    {"name": "support_tickets_30d", "dtype": "int64", "description": "Support tickets, 30 days."},
]


def _snapshots(today: datetime) -> Any:
    """Daily snapshots at 12:00 UTC for the last DAYS days; fixed seed, so always the same shape."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(20251101)
    loyalty = rng.uniform(0.2, 1.0, CUSTOMERS)
    rows = []
    for day in range(DAYS, 0, -1):
        moment = (today - timedelta(days=day)).replace(hour=12, minute=0, second=0, microsecond=0)
        drift = 1.0 - 0.4 * (day < 20) * (loyalty < 0.45)  # some customers fade away lately
        orders = rng.poisson(6 * loyalty * drift)
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": np.arange(1, CUSTOMERS + 1),
                    "event_timestamp": moment.isoformat().replace("+00:00", "Z"),
                    "orders_30d": orders,
                    "spend_30d": np.round(orders * rng.gamma(4, 9, CUSTOMERS), 2),
                    "days_since_last_order": np.round(rng.exponential(12 / loyalty), 1),
                    "support_tickets_30d": rng.poisson(3 * (1.1 - loyalty)),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _labels(today: datetime) -> list[dict[str, Any]]:
    """Entity rows with a churn label at three points in time per customer."""
    import numpy as np

    rng = np.random.default_rng(7)
    rows = []
    for days_ago in (40, 25, 10):
        moment = (today - timedelta(days=days_ago)).replace(hour=18, minute=0, second=0)
        for customer in range(1, CUSTOMERS + 1):
            rows.append(
                {
                    "customer_id": customer,
                    "event_timestamp": moment.isoformat().replace("+00:00", "Z"),
                    "noise": float(rng.normal()),
                }
            )
    return rows


def _group(user: Any) -> Iterator[str]:
    # Everything belongs to the loading user's first team (none for a team-less admin).
    owner = owner_for_create(user=user)
    entity = Entity.objects.filter(name=ENTITY).first()
    if entity is None:
        entity = services.entity_create(
            name=ENTITY,
            join_keys=["customer_id"],
            description="A customer of the shop.",
            owner=owner,
        )
        yield f"Created entity {ENTITY}."
    group = FeatureGroup.objects.filter(name=GROUP).first()
    if group is not None:
        return
    today = datetime.now(tz=UTC)
    frame = _snapshots(today)
    source = DataSource.objects.filter(name=SOURCE).first()
    if source is None:
        source = services.source_create(
            name=SOURCE,
            file=io.BytesIO(frame.to_csv(index=False).encode()),
            description="Synthetic daily customer snapshots (generated, fixed seed).",
            owner=owner,
        )
    group = services.group_create(
        name=GROUP,
        entity=entity,
        features=FEATURES,
        description="Customer activity over 30 days, computed by the nightly batch.",
        ttl_seconds=90 * 86400,
        availability={"daily_at": "02:00"},
        tags={"domain": "sales", "demo": "yes"},
        tasks=["classification"],
        source=source,
        owner=owner,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "snapshots.csv"
        frame.to_csv(path, index=False)
        rows = services.ingest_path(group=group, path=path)
    yield f"Feature group {GROUP}: {rows} rows, loaded nightly at 02:00 (/features/)."


def _service() -> Iterator[str]:
    if FeatureService.objects.filter(name=SERVICE).exists():
        return
    services.service_create(
        name=SERVICE,
        features=[f"{GROUP}:{f['name']}" for f in FEATURES],
        description="What the churn model reads.",
        owner=FeatureGroup.objects.get(name=GROUP).owner,
    )
    yield f"Feature service {SERVICE}."


def _materialise(user: Any) -> Iterator[str]:
    group = FeatureGroup.objects.get(name=GROUP)
    job = jobs.job_create(
        kind=Job.Kind.MATERIALISATION,
        description=f"Materialise {GROUP} (demo)",
        submitted_by=user,
        params={"group_id": group.pk},
        unit="entities",
    )
    services.materialisation_run_job(job_id=job.pk)
    job.refresh_from_db()
    yield f"Online store for {GROUP}: {job.status} ({job.result})."


def _train(user: Any) -> tuple[bytes, list[dict[str, Any]], dict[str, float]]:
    import pandas as pd
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    features = online.features_resolve(feature_service=SERVICE)
    labels = _labels(datetime.now(tz=UTC))
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "training.parquet"
        training_sets.build(features=features, output=output, fmt="parquet", rows=labels)
        frame = pd.read_parquet(output)
    names = [f["name"] for f in FEATURES]
    # Churn: few recent orders and several tickets, blurred by noise (a synthetic ground truth).
    score = (
        -0.6 * frame["orders_30d"].fillna(0)
        + 0.8 * frame["support_tickets_30d"].fillna(0)
        + 0.05 * frame["days_since_last_order"].fillna(30)
        + frame["noise"]
    )
    frame["churned"] = (score > score.median()).map({True: "churn", False: "stay"})
    X, y = frame[names].astype("float64"), frame["churned"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    model = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(X_train, y_train)
    example = X_test.head(3).to_dict(orient="records")
    return sio.dumps(model), example, {"accuracy": round(float(model.score(X_test, y_test)), 4)}


def _model(user: Any) -> Iterator[str]:
    version = yield from demo_model_ensure(
        name=MODEL,
        description="Churn from customer_stats; predict with only a customer_id.",
        tags={"demo": "yes", "features": SERVICE},
        user=user,
        train=lambda: _train(user),
        filename="churn.skops",
        version_description="Trained on a point-in-time training set of customer_stats.",
        feature_service=FeatureService.objects.get(name=SERVICE),
    )
    if version is not None:
        yield (
            f"{MODEL}@production → v{version.version}; try POST /api/v1/models/{MODEL}/predict "
            '{"instances": [{"customer_id": 7}]}'
        )


def demo_load(*, user: Any) -> Iterator[str]:
    yield from _group(user)
    yield from _service()
    yield from _materialise(user)
    yield from _model(user)
