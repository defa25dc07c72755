"""Reads for rollout: datasets, gates, evaluations and their verdicts."""

from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from mlplatform.errors import ApplicationError, NotFoundError
from registry.models import ModelAlias, ModelVersion, RegisteredModel
from rollout import rules
from rollout.models import Evaluation, EvaluationDataset, Gate


def latest_ready(*, model: RegisteredModel) -> ModelVersion | None:
    return (
        ModelVersion.objects.filter(model=model, status=ModelVersion.Status.READY)
        .select_related("model")
        .order_by("-version")
        .first()
    )


def dataset_list(*, model: RegisteredModel) -> QuerySet[EvaluationDataset]:
    return EvaluationDataset.objects.filter(model=model).select_related("model", "job")


def dataset_of(*, model: RegisteredModel, dataset_id: Any) -> EvaluationDataset:
    """One of the model's datasets. Raises NotFoundError (or ApplicationError for a bad id)."""
    if isinstance(dataset_id, bool) or not str(dataset_id).strip().isdigit():
        raise ApplicationError(
            f"dataset: {dataset_id!r} is not a dataset id.", extra={"field": "dataset"}
        )
    found = dataset_list(model=model).filter(pk=int(str(dataset_id))).first()
    if found is None:
        raise NotFoundError(
            f"{model.name} has no evaluation dataset {dataset_id}.", extra={"field": "dataset"}
        )
    return found


def gate_of(*, model: RegisteredModel) -> Gate | None:
    return Gate.objects.select_related("dataset", "updated_by").filter(model=model).first()


def gate_get(*, model: RegisteredModel) -> Gate:
    gate = gate_of(model=model)
    if gate is None:
        raise NotFoundError(f"{model.name} has no promotion gate.")
    return gate


def evaluation_latest(*, version: ModelVersion, dataset: EvaluationDataset) -> Evaluation | None:
    """The evaluation that counts: the newest of the version on the dataset."""
    return (
        Evaluation.objects.filter(version=version, dataset=dataset)
        .select_related("job", "dataset", "version")
        .order_by("-created_at", "-id")
        .first()
    )


def evaluation_measured(*, version: ModelVersion, dataset: EvaluationDataset) -> Evaluation | None:
    """The newest succeeded evaluation of the version on the dataset."""
    return (
        Evaluation.objects.filter(
            version=version, dataset=dataset, status=Evaluation.Status.SUCCEEDED
        )
        .select_related("job")
        .order_by("-created_at", "-id")
        .first()
    )


def alias_version(*, model: RegisteredModel, alias: str) -> ModelVersion | None:
    link = ModelAlias.objects.filter(model=model, alias=alias).select_related("version").first()
    return link.version if link is not None else None


def gate_verdicts(
    *,
    gate: Gate,
    candidate: Evaluation,
    production: Evaluation | None,
    production_version: ModelVersion | None,
    alias: str = "production",
) -> list[rules.Verdict]:
    """The gate's rules against a candidate's metrics (relative ones against `production`)."""
    parsed = [rules.rule_parse(text) for text in gate.rules]
    if production_version is None:
        base = None
    elif production is not None:
        base = production.metrics or {}
    else:
        base = {}
    label = f"{alias} (v{production_version.version})" if production_version else alias
    return rules.verdicts(parsed, candidate.metrics or {}, base, production_label=label)


@dataclass
class DatasetEvaluations:
    dataset: EvaluationDataset
    evaluation: Evaluation | None
    gated: bool
    verdicts: list[rules.Verdict] = field(default_factory=list)


def version_evaluations(*, version: ModelVersion, alias: str = "production") -> list[Any]:
    """Per dataset of the model: the latest evaluation of `version`, and for the gate's dataset
    each rule's verdict."""
    model = version.model
    gate = gate_of(model=model)
    production_version = alias_version(model=model, alias=alias)
    answers = []
    for dataset in dataset_list(model=model):
        latest = evaluation_latest(version=version, dataset=dataset)
        entry = DatasetEvaluations(
            dataset=dataset,
            evaluation=latest,
            gated=gate is not None and gate.dataset_id == dataset.pk,
        )
        if entry.gated and gate is not None and latest is not None and latest.status == "succeeded":
            production = (
                evaluation_measured(version=production_version, dataset=dataset)
                if production_version is not None
                else None
            )
            entry.verdicts = gate_verdicts(
                gate=gate,
                candidate=latest,
                production=production,
                production_version=production_version,
                alias=alias,
            )
        answers.append(entry)
    return answers
