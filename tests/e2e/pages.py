"""The main pages of the site, and a small catalog to show on them: what the phone-width tests
walk and what the screenshots in docs/ui/ show. Add a page here and both cover it."""

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from jobs.models import Job
from tests.factories import (
    DEFAULT_TEAM,
    DataSourceFactory,
    EntityFactory,
    FeatureFactory,
    FeatureGroupFactory,
    FeatureServiceFactory,
    JobFactory,
    ModelAliasFactory,
    ModelVersionFactory,
    TeamFactory,
    UserFactory,
)
from tests.serving.conftest import _fit_all

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
USER = ("alice", "pw-alice-123")


# What an ingestion publishes for a feature (features/ingestion.py): a 20-bin histogram and more.
SPEND = {
    "count": 12_480, "nulls": 37, "distinct": 9_812, "min": 0.0, "max": 1_950.0,
    "mean": 412.36, "std": 288.9,
    "histogram": {
        "edges": [i * 97.5 for i in range(21)],
        "counts": [410, 1210, 1830, 2050, 1820, 1490, 1130, 820, 570, 390,
                   260, 170, 110, 70, 50, 40, 25, 15, 10, 10],
    },
}  # fmt: skip


@dataclass(frozen=True)
class Page:
    name: str  # the screenshot's file name, docs/ui/<name>-<width>.png
    path: str
    title: str  # what docs/ui.md calls it


MAIN_PAGES = [
    Page("home", "/", "Home"),
    Page("models", "/models/", "Models list"),
    Page("model", "/models/iris/", "Model page"),
    Page("version", "/models/iris/versions/2/", "Version page"),
    Page("compare", "/models/iris/compare/?v=1&v=2", "Versions compared"),
    Page("try", "/serving/models/iris/try/", "Try it"),
    Page("catalog", "/features/", "Feature catalog"),
    Page("group", "/features/groups/customer_stats/", "Feature group"),
    Page("feature", "/features/groups/customer_stats/spend_30d/", "Feature page"),
    Page("entity", "/features/entities/customer/", "Entity"),
    Page("source", "/features/sources/customer_events/", "Data source"),
    Page("service", "/features/services/churn_inputs/", "Feature service"),
    Page("jobs", "/jobs/", "Jobs list"),
    Page("job", "/jobs/{job}/", "Job page"),
    Page("new-job", "/jobs/new", "New batch job"),
    Page("profile", "/accounts/profile/", "Profile and API tokens"),
]


def populate() -> dict[str, Any]:
    """A member of the team `data` and what they would see: a ready iris model with production,
    metrics and a long description, a feature group with a service, a finished job. Returns
    the values the page paths name ({job})."""
    team = TeamFactory.create(name=DEFAULT_TEAM)
    UserFactory.create(
        username=USER[0],
        password=USER[1],
        teams=[team],
        apps=("registry", "features", "jobs", "batch", "serving"),
    )
    estimator, example = _fit_all()["iris"]
    first = ModelVersionFactory.create(
        model__name="iris",
        model__description="Iris species from sepal and petal measurements, "
        "a classifier every tutorial starts with.",
        estimator=estimator,
        input_example=example,
        metrics={"accuracy": 0.953, "f1_macro": 0.951},
        description="Logistic regression on the four measurements",
    )
    ModelVersionFactory.create(
        model=first.model,
        estimator=estimator,
        input_example=example,
        metrics={"accuracy": 0.967, "f1_macro": 0.966},
        description="Retrained with more samples",
    )
    ModelAliasFactory.create(version=first, alias="production")
    group = FeatureGroupFactory.create(
        name="customer_stats",
        owner=team,
        entity=EntityFactory.create(name="customer", owner=team),
        source=DataSourceFactory.create(name="customer_events", owner=team),
    )
    features = [
        FeatureFactory.create(
            group=group, name=name, statistics=SPEND if name == "spend_30d" else {}
        )
        for name in ("spend_30d", "visits_30d", "tenure_days")
    ]
    FeatureServiceFactory.create(name="churn_inputs", owner=team, features=features)
    now = timezone.now()
    job = JobFactory.create(
        kind=Job.Kind.MODEL_VALIDATION,
        status=Job.Status.SUCCEEDED,
        description="Validate iris v2",
        progress_done=2,
        progress_total=2,
        progress_unit="steps",
        started_at=now,
        finished_at=now,
    )
    return {"job": job.pk}
