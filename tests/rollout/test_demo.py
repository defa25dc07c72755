"""The demo command gives the demo model an evaluation dataset and a promotion gate, once."""

from io import StringIO

import pytest
from django.core.management import call_command

from jobs.models import Job
from rollout.models import Evaluation, EvaluationDataset, Gate

pytestmark = pytest.mark.django_db


def test_the_demo_model_gets_a_gate_on_labelled_iris_once() -> None:
    first, second = StringIO(), StringIO()

    call_command("demo", stdout=first)
    call_command("demo", stdout=second)

    gate = Gate.objects.get(model__name="iris")
    assert gate.rules == ["accuracy >= 0.9", "accuracy >= production - 0.02"]
    dataset = EvaluationDataset.objects.get(model__name="iris")
    assert (dataset.rows, dataset.label_column, dataset.status) == (150, "species", "ready")
    assert gate.dataset == dataset
    # The production version's evaluation is queued for a worker (once, not per run).
    evaluation = Evaluation.objects.get(version__model__name="iris")
    assert evaluation.job is not None
    assert evaluation.job.kind == Job.Kind.EVALUATION
    assert "Gate of iris" in first.getvalue()
    assert "Gate of iris" not in second.getvalue()
