"""Demo content loaded by `python manage.py demo` (idempotent): the `iris` model in production."""

from collections.abc import Iterator
from typing import Any

from django.core.files.base import ContentFile

from registry import services
from registry.models import ModelAlias, ModelVersion, RegisteredModel

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


def demo_load(*, user: Any) -> Iterator[str]:
    model = RegisteredModel.objects.filter(name=DEMO_MODEL).first()
    if model is None:
        model = services.model_create(
            name=DEMO_MODEL,
            description="Iris species from sepal and petal sizes (logistic regression).",
            tags={"dataset": "iris", "demo": "yes"},
            user=user,
        )
        yield f"Registered model {DEMO_MODEL}."
    version = model.versions.order_by("-version").first()
    if version is None:
        artifact, example, metrics = _train()
        version = services.version_upload(
            model=model,
            file=ContentFile(artifact, name="iris.skops"),
            user=user,
            description="Demo: StandardScaler → LogisticRegression, saved with skops.",
            metrics=metrics,
            tags={"format": "skops"},
            input_example=example,
        )
        yield f"Uploaded {DEMO_MODEL} v{version.version}."
    if version.status == ModelVersion.Status.PENDING:
        version = services.version_validate(version_id=version.pk)
        yield f"Validated {DEMO_MODEL} v{version.version}: {version.status}."
    if version.status != ModelVersion.Status.READY:
        yield f"{DEMO_MODEL} v{version.version} is {version.status}: {version.status_message}"
        return
    if not ModelAlias.objects.filter(model=model, alias="production").exists():
        services.alias_set(
            model=model, alias="production", version_number=version.version, user=user
        )
    yield f"{DEMO_MODEL}@production → v{version.version} (/models/{DEMO_MODEL}/)"
