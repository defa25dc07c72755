"""Demo content loaded by `python manage.py demo` (idempotent): the `iris` model in production."""

from collections.abc import Callable, Generator, Iterator
from typing import Any

from django.core.files.base import ContentFile

from registry import services
from registry.models import ModelAlias, ModelVersion, RegisteredModel
from tenancy.services import owner_for_create

DEMO_MODEL = "iris"


def _train() -> tuple[bytes, list[dict[str, Any]], dict[str, float]]:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Shipped inside scikit-learn: no download. as_frame keeps the column names.
    X, y = load_iris(return_X_y=True, as_frame=True)
    y = y.map(dict(enumerate(load_iris().target_names)))
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(X_train, y_train)
    example = X_test.head(3).to_dict(orient="records")
    return sio.dumps(model), example, {"accuracy": round(float(model.score(X_test, y_test)), 4)}


def demo_model_ensure(
    *,
    name: str,
    description: str,
    tags: dict[str, str],
    user: Any,
    train: Callable[[], tuple[bytes, list[dict[str, Any]], dict[str, float]]],
    filename: str,
    version_description: str,
    feature_service: Any = None,
) -> Generator[str, None, ModelVersion | None]:
    """Register, upload, validate inline and promote a demo model once; yields what it did.

    Returns the production version, or None if validation rejected it.
    """
    model = RegisteredModel.objects.filter(name=name).first()
    if model is None:
        model = services.model_create(
            name=name,
            description=description,
            tags=tags,
            owner=owner_for_create(user=user),
            user=user,
        )
        yield f"Registered model {name}."
    version = model.versions.order_by("-version").first()
    if version is None:
        artifact, example, metrics = train()
        version = services.version_upload(
            model=model,
            file=ContentFile(artifact, name=filename),
            user=user,
            description=version_description,
            metrics=metrics,
            tags={"format": "skops"},
            input_example=example,
            feature_service=feature_service,
        )
        linked = f" (linked to feature service {feature_service})" if feature_service else ""
        yield f"Uploaded {name} v{version.version}{linked}."
    if version.status == ModelVersion.Status.PENDING:
        version = services.version_validate(version_id=version.pk)
        yield f"Validated {name} v{version.version}: {version.status}."
    if version.status != ModelVersion.Status.READY:
        yield f"{name} v{version.version} is {version.status}: {version.status_message}"
        return None
    if not ModelAlias.objects.filter(model=model, alias="production").exists():
        services.alias_set(
            model=model, alias="production", version_number=version.version, user=user
        )
    return version


def demo_load(*, user: Any) -> Iterator[str]:
    version = yield from demo_model_ensure(
        name=DEMO_MODEL,
        description="Iris species from sepal and petal sizes (logistic regression).",
        tags={"dataset": "iris", "demo": "yes"},
        user=user,
        train=_train,
        filename="iris.skops",
        version_description="Demo: StandardScaler → LogisticRegression, saved with skops.",
    )
    if version is not None:
        yield f"{DEMO_MODEL}@production → v{version.version} (/models/{DEMO_MODEL}/)"
