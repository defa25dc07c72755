"""Demo content loaded by `python manage.py demo` (idempotent): the demo `iris` model gets a
labelled evaluation dataset (the half of iris its demo version was not trained on, plus the
other half) and a promotion gate, so the Rollout tab has something to show and moving
`production` shows the gate at work."""

import io
from collections.abc import Iterator
from typing import Any

from sklearn.datasets import load_iris

from registry.models import RegisteredModel
from rollout import services
from rollout.models import EvaluationDataset, Gate

DEMO_MODEL = "iris"
DEMO_RULES = ["accuracy >= 0.9", "accuracy >= production - 0.02"]


def _labelled_csv() -> bytes:
    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns={"target": "species"})
    frame["species"] = frame["species"].map(dict(enumerate(iris.target_names)))
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def demo_load(*, user: Any) -> Iterator[str]:
    model = RegisteredModel.objects.filter(name=DEMO_MODEL).first()
    if model is None or Gate.objects.filter(model=model).exists():
        return
    dataset = EvaluationDataset.objects.filter(model=model).first()
    if dataset is None:
        dataset = services.dataset_upload(
            model=model,
            stream=io.BytesIO(_labelled_csv()),
            label_column="species",
            name="iris, labelled",
            filename="iris.csv",
            user=user,
        )
    services.gate_set(model=model, dataset_id=dataset.pk, rule_texts=DEMO_RULES, user=user)
    yield f"Gate of {DEMO_MODEL}: {', '.join(DEMO_RULES)} on dataset #{dataset.pk}."
