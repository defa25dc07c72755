"""Admin for the registry: upload versions and move aliases from a registered model's page.

Every write goes through the services the API uses: `model_create`/`model_update`/`model_delete`,
`version_upload` (size cap, magic bytes, sha256, server path, queued validation),
`version_update`/`version_delete` and `alias_set`. The forms only parse their fields and call the
services' check functions, so a refusal is a form error and nothing is saved.
"""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from mlplatform.errors import ApplicationError
from registry import services, signals
from registry.models import AliasChange, ModelAlias, ModelVersion, RegisteredModel
from tenancy.admin import OwnedModelAdmin, service_errors


def _json_field(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
    )


class RegisteredModelForm(forms.ModelForm):
    upload_artifact = forms.FileField(
        label="New version: artifact",
        required=False,
        help_text="A .skops (recommended), .joblib, .pkl or .pickle file.",
    )
    upload_description = forms.CharField(label="Description", required=False)
    upload_metrics = _json_field("Metrics (JSON object)", 'e.g. {"accuracy": 0.93}')
    upload_tags = _json_field("Tags (JSON object)", 'e.g. {"dataset": "2025-03"}')
    upload_input_example = _json_field(
        "Input example (JSON list of rows)", 'e.g. [{"age": 41, "plan": "pro"}]'
    )
    alias_name = forms.SlugField(
        label="Set alias", required=False, help_text="e.g. production or staging"
    )
    alias_version = forms.IntegerField(
        label="to version", required=False, min_value=1, help_text="A ready version number."
    )
    alias_override_reason = forms.CharField(
        label="Override reason",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=(
            "Only to move a gated alias past a failed promotion gate; needs the permission "
            "to override the gate, and is kept in the alias history."
        ),
    )

    request: HttpRequest | None = None

    class Meta:
        model = RegisteredModel
        fields = ["name", "description", "owner", "tags"]

    def _json(self, field: str, kind: type, example: str) -> Any:
        text = (self.cleaned_data.get(field) or "").strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            self.add_error(field, f"Not valid JSON: {exc.msg} (line {exc.lineno}).")
            return None
        except RecursionError:
            self.add_error(field, "Not valid JSON: nested too deeply.")
            return None
        if kind is list and isinstance(value, dict):
            value = [value]
        if not isinstance(value, kind):
            self.add_error(field, f"Must be a JSON {example}.")
            return None
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        cleaned["parsed_metrics"] = self._json("upload_metrics", dict, "object")
        cleaned["parsed_tags"] = self._json("upload_tags", dict, "object")
        cleaned["parsed_input_example"] = self._json("upload_input_example", list, "list of rows")
        if "tags" in cleaned:
            with service_errors(self, "tags"):
                cleaned["tags"] = services.model_fields_check(tags=cleaned["tags"])
        upload = cleaned.get("upload_artifact")
        alias, number = cleaned.get("alias_name"), cleaned.get("alias_version")
        user: Any = self.request.user if self.request else None
        if self.instance.pk and user is not None:
            if upload and not user.has_perm("registry.add_modelversion", self.instance):
                self.add_error(None, "Only the model's team may add versions.")
            if alias and not user.has_perm("registry.change_modelalias", self.instance):
                self.add_error(None, "Only the model's team may move aliases.")
        if upload:
            try:
                services.artifact_inspect(file=upload, filename=upload.name or "")
            except ApplicationError as exc:
                self.add_error("upload_artifact", exc.message.removeprefix("artifact: "))
        if bool(alias) != bool(number):
            self.add_error("alias_version", "Give both an alias and a version number.")
        elif alias and number:
            if not self.instance.pk:
                self.add_error("alias_version", "Register the model and upload a version first.")
            else:
                with service_errors(self, "alias_version"):
                    version = services.alias_check(
                        model=self.instance, alias=alias, version_number=number
                    )
                    _gate_check(
                        self.instance,
                        alias,
                        version,
                        user=user,
                        reason=cleaned.get("alias_override_reason") or "",
                    )
        return cleaned


def _gate_check(
    model: RegisteredModel, alias: str, version: ModelVersion, *, user: Any, reason: str
) -> None:
    """Ask the promotion gate (a receiver of `alias_moving`) before anything is saved, so a
    refusal listing the failed rules is a form error; `alias_set` asks it again when saving."""
    current = ModelAlias.objects.filter(model=model, alias=alias).select_related("version").first()
    if current is not None and current.version_id == version.pk:
        return
    signals.alias_moving.send(
        sender=ModelAlias,
        model=model,
        alias=alias,
        version=version,
        previous=current.version if current is not None else None,
        user=user,
        reason=reason.strip(),
        kind=AliasChange.Kind.SET,
    )


class ModelVersionInline(admin.TabularInline):
    model = ModelVersion
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["version", "status", "status_message", "format", "sha256", "aliases_display"]
    readonly_fields = ["version", "status", "status_message", "format", "sha256", "aliases_display"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are added with the upload fields above, through the service

    @admin.display(description="aliases")
    def aliases_display(self, obj: ModelVersion) -> str:
        return ", ".join(a.alias for a in obj.aliases.all()) or "—"


class ModelAliasInline(admin.TabularInline):
    model = ModelAlias
    extra = 0
    can_delete = False
    fields = ["alias", "version", "updated_at"]
    readonly_fields = ["alias", "version", "updated_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RegisteredModel)
class RegisteredModelAdmin(OwnedModelAdmin):
    form = RegisteredModelForm
    list_display = ["name", "owner", "latest_version", "aliases_display", "updated_at"]
    search_fields = ["name", "description"]
    list_filter = ["owner"]
    inlines = [ModelAliasInline, ModelVersionInline]
    fieldsets = [
        (None, {"fields": ["name", "description", "owner", "tags"]}),
        (
            "Upload a new version",
            {
                "fields": [
                    "upload_artifact",
                    "upload_description",
                    "upload_metrics",
                    "upload_tags",
                    "upload_input_example",
                ]
            },
        ),
        (
            "Set or move an alias",
            {"fields": ["alias_name", "alias_version", "alias_override_reason"]},
        ),
    ]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # type: ignore[override]
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request  # type: ignore[attr-defined]
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["name"] if obj else []

    @admin.display(description="latest")
    def latest_version(self, obj: RegisteredModel) -> str:
        latest = obj.versions.order_by("-version").first()
        return f"v{latest.version} ({latest.status})" if latest else "—"

    @admin.display(description="aliases")
    def aliases_display(self, obj: RegisteredModel) -> str:
        return ", ".join(f"{a.alias}→v{a.version.version}" for a in obj.aliases.all()) or "—"

    def service_save(
        self, request: HttpRequest, obj: RegisteredModel, form: Any, change: bool
    ) -> RegisteredModel:
        data = form.cleaned_data
        if not change:
            return services.model_create(
                name=data["name"],
                description=data.get("description") or "",
                tags=data.get("tags"),
                owner=data.get("owner"),
                user=request.user,
            )
        return services.model_update(
            model=obj,
            description=data.get("description") or "",
            tags=data.get("tags") or {},
            owner=data.get("owner"),
            clear_owner=data.get("owner") is None,
        )

    def service_delete(self, request: HttpRequest, obj: RegisteredModel) -> None:
        services.model_delete(model=obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        model: RegisteredModel = form.instance
        data = form.cleaned_data
        upload = data.get("upload_artifact")
        try:
            if upload:
                version = services.version_upload(
                    model=model,
                    file=upload,
                    user=request.user,
                    description=data.get("upload_description") or "",
                    metrics=data.get("parsed_metrics"),
                    tags=data.get("parsed_tags"),
                    input_example=data.get("parsed_input_example"),
                )
                self.message_user(
                    request,
                    f"Uploaded {model.name} v{version.version}; it is being validated.",
                    messages.SUCCESS,
                )
            if data.get("alias_name") and data.get("alias_version"):
                services.alias_set(
                    model=model,
                    alias=data["alias_name"],
                    version_number=data["alias_version"],
                    user=request.user,
                    reason=data.get("alias_override_reason") or "",
                )
                self.message_user(
                    request,
                    f"{data['alias_name']} now points at v{data['alias_version']}.",
                    messages.SUCCESS,
                )
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)


VERSION_FIELDS: tuple[str, ...] = (
    "model",
    "version",
    "status",
    "status_message",
    "format",
    "sha256",
    "size_bytes",
    "signature_table",
    "library_versions",
    "engine",
    "graph_sha256",
    "compilation",
    "protections",
    "runner_failures",
    "aliases_display",
    "metrics",
    "tags",
    "description",
    "input_example",
    "uploaded_by",
    "validation_job",
    "created_at",
)


@admin.register(ModelVersion)
class ModelVersionAdmin(OwnedModelAdmin):
    list_display = [
        "__str__",
        "status",
        "engine",
        "format",
        "short_sha",
        "uploaded_by",
        "created_at",
    ]
    list_filter = ["status", "engine", "format"]
    search_fields = ["model__name", "sha256", "description"]
    actions = ["set_production", "set_staging"]
    fields = VERSION_FIELDS
    # Everything is read-only except the metadata a ready version may still change.
    readonly_fields = [name for name in VERSION_FIELDS if name != "description"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # upload from the registered model's page, through the service

    def service_save(
        self, request: HttpRequest, obj: ModelVersion, form: Any, change: bool
    ) -> ModelVersion:
        return services.version_update(
            version=obj, description=form.cleaned_data.get("description") or ""
        )

    def service_delete(self, request: HttpRequest, obj: ModelVersion) -> None:
        services.version_delete(version=obj, user=request.user)

    @admin.display(description="sha256")
    def short_sha(self, obj: ModelVersion) -> str:
        return obj.sha256[:12]

    @admin.display(description="aliases")
    def aliases_display(self, obj: ModelVersion) -> str:
        return ", ".join(a.alias for a in obj.aliases.all()) or "—"

    @admin.display(description="signature")
    def signature_table(self, obj: ModelVersion) -> SafeString | str:
        signature = obj.signature
        if not signature.inputs:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((i, c.name, c.dtype) for i, c in enumerate(signature.inputs, start=1)),
        )
        outputs = ", ".join(o.name for o in signature.outputs)
        return format_html(
            "<p>task: <b>{}</b> · estimator: {} · classes: {} · outputs: {}</p>"
            "<table><thead><tr><th>#</th><th>input column</th><th>dtype</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            signature.task,
            signature.estimator,
            list(signature.classes) if signature.classes is not None else "—",
            outputs,
            rows,
        )

    def _alias_action(self, request: HttpRequest, queryset: QuerySet, alias: str) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return
        version = queryset.select_related("model").get()
        if not request.user.has_perm("registry.change_modelalias", version.model):
            self.message_user(request, "Only the model's team may move aliases.", messages.ERROR)
            return
        try:
            services.alias_set(
                model=version.model,
                alias=alias,
                version_number=version.version,
                user=request.user,
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"{alias} now points at {version}.", messages.SUCCESS)

    @admin.action(description="Point the production alias at the selected version")
    def set_production(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._alias_action(request, queryset, "production")

    @admin.action(description="Point the staging alias at the selected version")
    def set_staging(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._alias_action(request, queryset, "staging")


@admin.register(AliasChange)
class AliasChangeAdmin(admin.ModelAdmin):
    list_display = ["model", "alias", "from_version", "to_version", "changed_by", "changed_at"]
    list_filter = ["alias"]
    readonly_fields = ["model", "alias", "from_version", "to_version", "changed_by", "changed_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
