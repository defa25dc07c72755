"""The rollout page of a model: its promotion gate, a candidate version beside production
(measured metrics with deltas, each rule's verdict, reported metrics apart, ROC and
precision-recall curves or predicted-vs-actual and residuals), the evaluation jobs, and a
button to evaluate the candidate now."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from mlplatform import charts
from mlplatform.errors import ApplicationError, PermissionDeniedError
from registry import selectors as registry_selectors
from registry.models import ModelVersion, RegisteredModel
from registry.views import model_for_reader
from rollout import rules, selectors, services
from rollout.models import Evaluation, EvaluationDataset
from tenancy.services import write_check

ALIAS = "production"


@dataclass
class Side:
    version: ModelVersion | None
    evaluation: Evaluation | None = None
    label: str = ""

    @property
    def metrics(self) -> dict[str, Any]:
        if self.evaluation is None or self.evaluation.effective_status != "succeeded":
            return {}
        return self.evaluation.metrics or {}

    @property
    def curves(self) -> dict[str, Any]:
        if self.evaluation is None or self.evaluation.effective_status != "succeeded":
            return {}
        return self.evaluation.curves or {}


@dataclass
class MetricRow:
    name: str
    candidate: Any
    production: Any
    delta: float | None
    better: bool | None
    lower_is_better: bool


@dataclass
class Page:
    model: RegisteredModel
    gate: Any
    dataset: EvaluationDataset | None
    candidate: Side
    production: Side
    ready: list[ModelVersion]
    rows: list[MetricRow] = field(default_factory=list)
    verdicts: list[rules.Verdict] = field(default_factory=list)
    charts: list[Any] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _rows(candidate: dict[str, Any], production: dict[str, Any]) -> list[MetricRow]:
    rows = []
    for name in rules.ALL_METRICS:
        if name not in candidate and name not in production:
            continue
        mine, theirs = _number(candidate.get(name)), _number(production.get(name))
        delta = mine - theirs if mine is not None and theirs is not None else None
        lower = name in rules.LOWER_IS_BETTER
        better = None if not delta else (delta < 0) == lower
        rows.append(MetricRow(name, mine, theirs, delta, better, lower))
    return rows


def _pairs(points: Any) -> list[tuple[Any, Any]]:
    return [(point[0], point[1]) for point in points or [] if len(point) == 2]


def _charts(page: Page) -> list[Any]:
    sides = [s for s in (page.candidate, page.production) if s.version is not None and s.curves]
    if not sides:
        return []
    found = []
    if any("roc" in s.curves for s in sides):
        roc: dict[str, Sequence[tuple[Any, Any]]] = {
            s.label: _pairs(s.curves.get("roc")) for s in sides
        }
        roc["chance"] = [(0.0, 0.0), (1.0, 1.0)]
        found.append(
            (
                "roc-chart",
                charts.line_chart(
                    roc,
                    title="ROC curve",
                    x_label="false positive rate",
                    y_label="true positive rate",
                ),
            )
        )
        pr: dict[str, Sequence[tuple[Any, Any]]] = {
            s.label: _pairs(s.curves.get("pr")) for s in sides
        }
        found.append(
            (
                "pr-chart",
                charts.line_chart(
                    pr, title="Precision-recall curve", x_label="recall", y_label="precision"
                ),
            )
        )
    if any("predicted_vs_actual" in s.curves for s in sides):
        points: dict[str, Sequence[tuple[Any, Any]]] = {
            s.label: _pairs(s.curves.get("predicted_vs_actual")) for s in sides
        }
        values = [v for series in points.values() for pair in series for v in pair]
        if values:
            low, high = min(values), max(values)
            points["predicted = actual"] = [(low, low), (high, high)]
        found.append(
            (
                "predicted-chart",
                charts.line_chart(
                    points,
                    title="Predicted against actual (a sample of rows)",
                    x_label="actual",
                    y_label="predicted",
                ),
            )
        )
        for s in sides:
            found.append(
                (
                    f"residuals-{s.version.version if s.version else 0}",
                    charts.histogram(
                        s.curves.get("residuals"),
                        title=f"Residuals of {s.label}",
                        x_label="predicted - actual",
                    ),
                )
            )
    return found


def page_build(model: RegisteredModel, candidate_number: str | None) -> Page:
    gate = selectors.gate_of(model=model)
    dataset = (
        gate.dataset
        if gate is not None
        else selectors.dataset_list(model=model)
        .filter(status=EvaluationDataset.Status.READY)
        .first()
    )
    ready = list(
        ModelVersion.objects.filter(model=model, status=ModelVersion.Status.READY).order_by(
            "-version"
        )
    )
    chosen = None
    if candidate_number and candidate_number.isdigit():
        chosen = next((v for v in ready if v.version == int(candidate_number)), None)
    chosen = chosen or next(iter(ready), None)
    production = selectors.alias_version(model=model, alias=ALIAS)
    page = Page(
        model=model,
        gate=gate,
        dataset=dataset,
        candidate=Side(chosen, label=f"v{chosen.version}" if chosen else ""),
        production=Side(
            production, label=f"v{production.version} (production)" if production else ""
        ),
        ready=ready,
    )
    if dataset is not None:
        for side in (page.candidate, page.production):
            if side.version is not None:
                side.evaluation = selectors.evaluation_latest(version=side.version, dataset=dataset)
    page.rows = _rows(page.candidate.metrics, page.production.metrics)
    if gate is not None and page.candidate.metrics and page.candidate.evaluation is not None:
        measured = (
            selectors.evaluation_measured(version=production, dataset=gate.dataset)
            if production is not None
            else None
        )
        page.verdicts = selectors.gate_verdicts(
            gate=gate,
            candidate=page.candidate.evaluation,
            production=measured,
            production_version=production,
        )
    page.charts = _charts(page)
    page.evaluations = list(
        Evaluation.objects.filter(version__model=model)
        .select_related("version", "dataset", "job")
        .order_by("-created_at", "-id")[:10]
    )
    return page


@login_required
def model_rollout(request: HttpRequest, name: str) -> HttpResponse:
    """`?candidate=n` (default: the newest ready version) beside production."""
    model = model_for_reader(request, name)
    page = page_build(model, request.GET.get("candidate"))
    return render(
        request,
        "rollout/model.html",
        {
            "model": model,
            "page": page,
            "may_evaluate": request.user.has_perm("registry.change_registeredmodel", model),
        },
    )


@login_required
@require_POST
def evaluate_now(request: HttpRequest, name: str) -> HttpResponse:
    """Queue an evaluation of `version` on the gate's dataset (else the newest ready one)."""
    model = model_for_reader(request, name)
    try:
        write_check(user=request.user, perm="registry.change_registeredmodel", obj=model)
    except PermissionDeniedError as exc:
        raise PermissionDenied(exc.message) from exc
    number = request.POST.get("version", "")
    target = reverse("rollout:model", args=[model.name])
    try:
        if not number.isdigit():
            raise ApplicationError("Choose a version to evaluate.")
        version = registry_selectors.version_get(model=model, version=int(number))
        page = page_build(model, number)
        if page.dataset is None:
            raise ApplicationError(f"{model.name} has no evaluation dataset yet.")
        queued = services.evaluation_request(
            version=version, dataset=page.dataset, user=request.user
        )
        messages.success(
            request, f"Evaluating v{version.version} on {page.dataset.name}: job {queued.job_id}."
        )
        target += f"?candidate={version.version}"
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(target)
