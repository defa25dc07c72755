"""HTML pages: the "Try it" form of a model, its prediction log (with CSV export), and its
aliases' traffic (canary, shadows, bounds, live figures, rollback)."""

import csv
import json
from collections.abc import Iterator, Sequence
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render

from mlplatform import charts
from mlplatform.errors import ApplicationError
from registry import selectors as registry_selectors
from registry import services as registry_services
from registry.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel
from registry.traffic import BOUNDS, TrafficPolicy
from serving import selectors, services
from serving.codecs.columns import DecodedRequest, InputError
from serving.models import PredictionLog


def _field_for(dtype: str, initial: Any) -> forms.Field:
    if dtype == "string":
        return forms.CharField(initial=initial, strip=False)
    if dtype == "bool":
        return forms.BooleanField(initial=bool(initial), required=False)
    return forms.FloatField(initial=initial)


def try_form_class(version: ModelVersion) -> type[forms.Form]:
    """One field per signature column, prefilled from the version's input example; for a
    version linked to a feature service, one field per entity join key (the features come from
    the online store). The class's `_try_dtypes` maps each field to its dtype."""
    example = version.input_example[0] if version.input_example else {}
    if not isinstance(example, dict):
        example = {}
    inputs, linked = selectors.try_inputs(version=version)
    fields: dict[str, Any] = {
        name: forms.IntegerField()
        if linked and dtype == "int64"
        else _field_for(dtype, example.get(name))
        for name, dtype in inputs
    }
    fields["_try_dtypes"] = dict(inputs)
    return type("TryForm", (forms.Form,), fields)


# Signature dtypes → Open Inference (v2) datatypes, for the v2 snippet.
_V2_DATATYPES = {"string": "BYTES", "int64": "INT64", "bool": "BOOL", "float64": "FP64"}


def _typed(value: Any, dtype: str) -> Any:
    """`value` as a JSON client sends a column of `dtype`: numbers unquoted, whole numbers for
    int64."""
    if value is None:
        return None
    if dtype == "string":
        return str(value)
    if dtype == "bool":
        return bool(value)
    if isinstance(value, str):
        return value  # a value the form refused: shown as typed
    if dtype == "int64" and float(value).is_integer():
        return int(value)
    return float(value)


def example_row(version: ModelVersion, form: forms.Form) -> dict[str, Any]:
    """The row the snippets send: each value of the form (the example where a value does not
    clean) typed by the signature, so a copied snippet is a valid request."""
    dtypes = getattr(form, "_try_dtypes", None) or version.signature.dtypes
    row: dict[str, Any] = {}
    for name, field in form.fields.items():
        try:
            value = field.clean(form[name].value())
        except forms.ValidationError:
            value = field.initial
        row[name] = _typed(value, dtypes.get(name, "float64"))
    return row


def _shell_quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _snippets(request: HttpRequest, version: ModelVersion, row: dict[str, Any]) -> dict[str, str]:
    base = request.build_absolute_uri("/").rstrip("/")
    name = version.model.name
    names = list(row)
    dtypes = version.signature.dtypes
    payload = {"instances": [row], "return": ["predict"]}
    native = json.dumps(payload)
    mlflow = json.dumps({"dataframe_split": {"columns": names, "data": [list(row.values())]}})
    v2 = json.dumps(
        {
            "inputs": [
                {
                    "name": column,
                    "shape": [1],
                    "datatype": _V2_DATATYPES[dtypes.get(column, "float64")],
                    "data": [value],
                }
                for column, value in row.items()
            ]
        }
    )
    auth = '-H "Authorization: Token $MLPLATFORM_TOKEN" -H "Content-Type: application/json"'
    return {
        "curl (native)": f"curl -X POST {base}/api/v1/models/{name}/predict {auth} \\\n"
        f"  -d {_shell_quoted(native)}",
        "curl (MLflow)": f"curl -X POST {base}/mlflow/models/{name}/invocations {auth} \\\n"
        f"  -d {_shell_quoted(mlflow)}",
        "curl (Open Inference v2)": f"curl -X POST {base}/v2/models/{name}/infer {auth} \\\n"
        f"  -d {_shell_quoted(v2)}",
        "Python": "import os, requests\n\n"
        f'response = requests.post(\n    "{base}/api/v1/models/{name}/predict",\n'
        '    headers={"Authorization": f"Token {os.environ[\'MLPLATFORM_TOKEN\']}"},\n'
        f"    json={payload!r},\n    timeout=10,\n)\nprint(response.json())",
    }


@login_required
def try_page(request: HttpRequest, name: str) -> HttpResponse:
    """Try a model: its default version, or `?version=3`, or `?alias=staging`."""
    model = get_object_or_404(RegisteredModel, name=name)
    result = error = None
    numbers, aliases = selectors.try_targets(model=model)
    asked_version = request.GET.get("version", "").strip()
    asked_alias = request.GET.get("alias", "").strip()
    target = {
        "version": asked_version,
        "alias": asked_alias,
        "numbers": numbers,
        "aliases": aliases,
    }
    try:
        if asked_version and not asked_version.isdigit():
            raise ApplicationError(f"version: {asked_version!r} is not a version number.")
        version = selectors.version_resolve(
            model_name=model.name,
            version=int(asked_version) if asked_version else None,
            alias=asked_alias or None,
        )
    except ApplicationError as exc:
        return render(
            request,
            "serving/try.html",
            {"model": model, "version": None, "error": exc.message, "target": target},
        )
    form_class = try_form_class(version)
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        row = dict(form.cleaned_data)
        outputs = ["predict"]
        if version.signature.has_predict_proba:
            outputs.append("predict_proba")
        decoded = DecodedRequest(
            columns={k: [v] for k, v in row.items()}, n_rows=1, outputs=outputs
        )
        try:
            matrix = services.request_to_matrix(version=version, decoded=decoded)
            result = services.prediction_make(version=version, matrix=matrix, outputs=outputs)
        except InputError as exc:
            if exc.field in form.fields:
                form.add_error(exc.field, exc.message)
            else:
                error = exc.message
        except ApplicationError as exc:
            error = exc.message
    example = example_row(version, form)
    probabilities = None
    if result is not None and result.probabilities is not None and result.classes is not None:
        probabilities = list(zip(result.classes, result.probabilities[0], strict=False))
    return render(
        request,
        "serving/try.html",
        {
            "model": model,
            "version": version,
            "form": form,
            "prediction": result.predictions[0] if result and result.predictions else None,
            "has_result": result is not None,
            "probabilities": probabilities,
            "error": error,
            "snippets": _snippets(request, version, example),
            "target": target,
            "linked": selectors.try_inputs(version=version)[1],
        },
    )


def _csv_rows(entries: Any) -> Iterator[list[Any]]:
    header_written = False
    for entry in entries.iterator(chunk_size=500):
        columns = list(entry.inputs)
        classes = entry.outputs.get("classes") or []
        if not header_written:
            yield [
                "created_at",
                "request_id",
                "version",
                "role",
                "protocol",
                "latency_ms",
                "row",
                *columns,
                "prediction",
                *(f"proba_{c}" for c in classes),
            ]
            header_written = True
        predictions = entry.outputs.get("predictions") or []
        probabilities = entry.outputs.get("probabilities") or []
        for position in range(entry.n_rows):
            values = [entry.inputs[c][position] for c in columns]
            prediction = predictions[position] if position < len(predictions) else ""
            proba = probabilities[position] if position < len(probabilities) else []
            yield [
                entry.created_at.isoformat(),
                entry.request_id,
                entry.version.version,
                entry.role,
                entry.protocol,
                round(entry.latency_ms, 3),
                position,
                *values,
                prediction,
                *proba,
            ]


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
def predictions_page(request: HttpRequest, name: str) -> HttpResponseBase:
    model = get_object_or_404(RegisteredModel, name=name)
    if not request.user.has_perm("registry.read_registeredmodel_data", model):  # tenancy rules
        raise PermissionDenied(f"The prediction log of {model.name} is its team's, or granted.")
    entries = selectors.prediction_log_list(model=model)
    if request.GET.get("format") == "csv":
        writer = csv.writer(_Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in _csv_rows(entries)), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="{model.name}-predictions.csv"'
        return response
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "serving/predictions.html",
        {"model": model, "page": page, "protocols": PredictionLog.Protocol},
    )


def _usage_chart(model: RegisteredModel, kind: str) -> str:
    usage = selectors.model_usage(model=model)
    every = f"per {usage.interval_seconds // 60} min"
    if kind == "requests":
        return charts.line_chart(
            {"requests": usage.requests, "rows": usage.rows},
            title=f"Logged requests and rows {every}",
            y_label=f"count {every}",
            x_time=True,
            y_from_zero=True,
        )
    if kind == "latency":
        return charts.line_chart(
            {"mean": usage.latency_mean, "p95": usage.latency_p95},
            title=f"Latency {every}",
            y_label="ms",
            x_time=True,
            y_from_zero=True,
        )
    return charts.line_chart(
        dict(usage.outputs),
        title=("Predicted classes " if usage.outputs_are_classes else "Mean prediction ") + every,
        y_label="predictions" if usage.outputs_are_classes else "prediction",
        x_time=True,
        y_from_zero=usage.outputs_are_classes,
    )


CHARTS = ("requests", "latency", "outputs")


@login_required
def model_chart(request: HttpRequest, name: str, kind: str) -> HttpResponse:
    """An SVG image of the last 24 hours of the model's prediction log: requests, latency or
    outputs. The log is the team's data: the same rule as the prediction log page."""
    model = get_object_or_404(RegisteredModel, name=name)
    if kind not in CHARTS:
        raise Http404(f"No chart {kind!r}: one of {', '.join(CHARTS)}.")
    if not request.user.has_perm("registry.read_registeredmodel_data", model):  # tenancy rules
        raise PermissionDenied(f"The prediction log of {model.name} is its team's, or granted.")
    svg = _usage_chart(model, kind)
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["Cache-Control"] = "private, max-age=30"
    return response


# --- traffic: an alias's canary, shadows and bounds, and how each version does ---------------

_POLICY_FIELDS = {
    "canary.version": "canary_version",
    "canary.percent": "canary_percent",
    "canary.routing_field": "routing_field",
    "canary": "canary_version",
    "shadows": "shadows",
    "version": "version",
    **{f"bounds.{name}": name for name in BOUNDS},
}


class PolicyForm(forms.Form):
    """An alias's version and traffic policy, as the API's PUT takes them."""

    alias = forms.SlugField(max_length=64, widget=forms.HiddenInput)
    version = forms.IntegerField(min_value=1)
    canary_version = forms.IntegerField(min_value=1, required=False, label="Canary version")
    canary_percent = forms.FloatField(required=False, label="Canary share (%)")
    routing_field = forms.CharField(max_length=100, required=False, label="Routing field")
    shadows = forms.CharField(
        max_length=100, required=False, help_text="Version numbers, separated by commas."
    )
    max_error_rate = forms.FloatField(required=False, label="Max error rate (0 to 1)")
    max_p99_ms = forms.FloatField(required=False, label="Max p99 latency (ms)")
    window_seconds = forms.FloatField(required=False, label="Window (s)")
    min_requests = forms.FloatField(required=False, label="Min requests")

    def policy(self) -> TrafficPolicy:
        """The policy the cleaned fields give. Raises ApplicationError naming the field."""
        data = self.cleaned_data
        raw_shadows = [part.strip() for part in (data.get("shadows") or "").split(",")]
        shadows: list[Any] = [int(p) if p.isdigit() else p for p in raw_shadows if p]
        canary = None
        if data.get("canary_version") is not None:
            canary = {
                "version": data["canary_version"],
                "percent": data.get("canary_percent"),
                "routing_field": data.get("routing_field") or "",
            }
        elif data.get("canary_percent"):
            raise ApplicationError(
                "canary.version: give the canary's version.", extra={"field": "canary.version"}
            )
        bounds = {name: data[name] for name in BOUNDS if data.get(name) is not None}
        return TrafficPolicy.parse({"canary": canary, "shadows": shadows, "bounds": bounds})

    @classmethod
    def for_alias(cls, link: ModelAlias) -> "PolicyForm":
        policy = registry_services.alias_policy(link)
        bounds = policy.bounds
        return cls(
            initial={
                "alias": link.alias,
                "version": link.version.version,
                "canary_version": policy.canary_version,
                "canary_percent": policy.canary_percent if policy.canary_version else None,
                "routing_field": policy.routing_field,
                "shadows": ", ".join(str(n) for n in policy.shadows),
                **{name: bounds.get(name) for name in BOUNDS},
            },
            prefix=link.alias,
        )


def _traffic_charts(entry: selectors.AliasTraffic) -> dict[str, str]:
    latency: dict[str, Sequence[tuple[Any, Any]]] = {
        f"v{f.version} {f.role}": [(minute, mean) for minute, mean, _ in f.by_minute]
        for f in [*entry.answering, *entry.shadows]
    }
    quality: dict[str, Sequence[tuple[Any, Any]]] = {
        f"v{f.version}": [(minute, q) for minute, _, q in f.by_minute] for f in entry.shadows
    }
    labels = any(f.agreement is not None for f in entry.shadows)
    return {
        "latency": charts.line_chart(
            latency,
            title="Mean latency per minute",
            y_label="ms",
            x_time=True,
            y_from_zero=True,
        ),
        "quality": charts.line_chart(
            quality,
            title=(
                "Shadow agreement with the answer given"
                if labels
                else "Shadow mean absolute difference from the answer given"
            ),
            y_label="share of rows" if labels else "mean |difference|",
            x_time=True,
            y_from_zero=True,
        ),
        "requests": charts.bar_chart(
            [(f"v{f.version} {f.role}", f.requests) for f in [*entry.answering, *entry.shadows]],
            title="Requests in the last hour",
            y_label="requests",
        ),
    }


@login_required
def traffic_page(request: HttpRequest, name: str) -> HttpResponse:
    """An alias's traffic: its version, canary, shadows and bounds (a form changes them), live
    figures of each version that answers or shadows, the audit trail, and a Rollback button."""
    model = get_object_or_404(RegisteredModel, name=name)
    if not request.user.has_perm("registry.read_registeredmodel_data", model):  # tenancy rules
        raise PermissionDenied(f"The traffic of {model.name} is its team's, or granted.")
    may_change = request.user.has_perm("registry.change_modelalias", model)
    bound: PolicyForm | None = None
    confirming: dict[str, Any] | None = None  # a rollback asked for, to confirm
    error = ""
    status = 200
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied(f"Only {model.name}'s team may change its traffic.")
        alias = request.POST.get("alias", "")
        if request.POST.get("action") == "rollback":
            previous = registry_selectors.alias_rollbacks(model=model).get(alias)
            if not request.POST.get("confirm") and previous is not None:
                confirming = {"alias": alias, "version": previous}
            else:
                try:
                    registry_services.alias_rollback(model=model, alias=alias, user=request.user)
                except ApplicationError as exc:
                    error, status = exc.message, exc.status_code
                else:
                    return HttpResponseRedirect(request.path)
        else:
            bound = PolicyForm(request.POST, prefix=request.POST.get("prefix") or None)
            if bound.is_valid():
                try:
                    registry_services.alias_set(
                        model=model,
                        alias=bound.cleaned_data["alias"],
                        version_number=bound.cleaned_data["version"],
                        user=request.user,
                        policy=bound.policy(),
                    )
                except ApplicationError as exc:
                    field = _POLICY_FIELDS.get(str(exc.extra.get("field", "")))
                    bound.add_error(field, exc.message)
                else:
                    return HttpResponseRedirect(request.path)
            status = 400
    entries = []
    for entry in selectors.alias_traffic(model=model):
        form = PolicyForm.for_alias(entry.link)
        if bound is not None and bound.prefix == entry.link.alias:
            form = bound
        entries.append(
            {
                "traffic": entry,
                "policy": registry_services.alias_policy(entry.link),
                "form": form,
                "charts": _traffic_charts(entry),
            }
        )
    return render(
        request,
        "serving/traffic.html",
        {
            "model": model,
            "entries": entries,
            "error": error,
            "confirming": confirming,
            "rollbacks": registry_selectors.alias_rollbacks(model=model),
            "may_change": may_change,
            "history": list(registry_selectors.alias_history(model=model, limit=50)),
            "removed_kind": AliasChange.Kind.CANARY_REMOVED,
        },
        status=status,
    )
