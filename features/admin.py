"""Admin for the feature catalog.

Every write goes through the services the API uses (`entity_create`/`entity_update`/
`entity_delete`, `source_create`/`source_update`/`source_delete`, `group_create`/`group_update`/
`group_delete`, `feature_update`/`feature_delete`, `service_create`/`service_update`/
`service_delete`); each form calls the services' check functions, so a refusal is a form error
and nothing is saved. What names an object or keys its stored data (names, join keys, a group's
entity, a source's origin, a feature's name and dtype) is read-only once it exists, as in the API.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from features import services
from features.forms import IngestForm
from features.models import (
    DataSource,
    Entity,
    Feature,
    FeatureGroup,
    FeatureService,
    OfflinePartition,
    OnlineValue,
)
from mlplatform.errors import ApplicationError
from tenancy.admin import OwnedModelAdmin, service_errors
from tenancy.services import readable_filter


def _owner_change(form: Any) -> dict[str, Any]:
    owner = form.cleaned_data.get("owner")
    return {"owner": owner, "clear_owner": owner is None}


class EntityForm(forms.ModelForm):
    class Meta:
        model = Entity
        fields = ["name", "join_keys", "description", "owner"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "join_keys" in cleaned:
            with service_errors(self, "join_keys"):
                cleaned["join_keys"] = services.entity_keys_check(cleaned["join_keys"])
        return cleaned


@admin.register(Entity)
class EntityAdmin(OwnedModelAdmin):
    form = EntityForm
    list_display = ["name", "join_keys", "created_at"]
    search_fields = ["name", "description"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Its name is its address and its join keys key every group's stored data.
        return ["name", "join_keys"] if obj else []

    def service_save(self, request: HttpRequest, obj: Entity, form: Any, change: bool) -> Entity:
        data = form.cleaned_data
        if not change:
            return services.entity_create(
                name=data["name"],
                join_keys=data["join_keys"],
                description=data.get("description") or "",
                owner=data.get("owner"),
            )
        return services.entity_update(
            entity=obj, description=data.get("description") or "", **_owner_change(form)
        )

    def service_delete(self, request: HttpRequest, obj: Entity) -> None:
        services.entity_delete(entity=obj)


class DataSourceForm(forms.ModelForm):
    class Meta:
        model = DataSource
        fields = ["name", "kind", "file", "path", "description", "owner"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.instance.pk and "kind" in cleaned:
            with service_errors(self):
                cleaned["path"] = services.source_check(
                    kind=cleaned["kind"],
                    has_file=bool(cleaned.get("file")),
                    path=cleaned.get("path") or "",
                    owner=cleaned.get("owner"),
                )
        return cleaned


@admin.register(DataSource)
class DataSourceAdmin(OwnedModelAdmin):
    form = DataSourceForm
    list_display = ["name", "kind", "path", "owner", "created_at"]
    list_filter = ["kind", "owner"]
    search_fields = ["name", "description"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Where a source's data comes from is fixed: groups were built on it.
        return ["name", "kind", "file", "path"] if obj else []

    def service_save(
        self, request: HttpRequest, obj: DataSource, form: Any, change: bool
    ) -> DataSource:
        data = form.cleaned_data
        if not change:
            return services.source_create(
                name=data["name"],
                kind=data["kind"],
                file=data.get("file") or None,
                path=data.get("path") or "",
                description=data.get("description") or "",
                owner=data.get("owner"),
            )
        return services.source_update(
            source=obj, description=data.get("description") or "", **_owner_change(form)
        )

    def service_delete(self, request: HttpRequest, obj: DataSource) -> None:
        services.source_delete(source=obj)


def _feature_item(form: Any) -> dict[str, Any]:
    data = form.cleaned_data
    return {
        "name": data.get("name"),
        "dtype": data.get("dtype"),
        "description": data.get("description") or "",
        "tags": data.get("tags") or {},
    }


class FeatureFormSet(BaseInlineFormSet):
    """The group's features checked by the services: new ones by `features_check` (names,
    dtypes, join keys, reserved columns), removed ones by `feature_delete_check`; the name and
    dtype of a stored feature never change (the API has no way to change them either)."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        group: FeatureGroup = self.instance
        entity = Entity.objects.filter(pk=group.entity_id).first()
        if entity is None:
            return  # the group's own form says what is missing
        problems: list[str] = []
        deleted = [form for form in self.deleted_forms if form.instance.pk]
        for form in deleted:
            try:
                services.feature_delete_check(feature=form.instance)
            except ApplicationError as exc:
                problems.append(exc.message)
        kept = [form for form in self.initial_forms if form not in self.deleted_forms]
        for form in kept:
            if {"name", "dtype"} & set(form.changed_data):
                problems.append(
                    f"features: the name and dtype of {form.initial.get('name')} never change; "
                    "add a new feature instead."
                )
            elif "tags" in form.changed_data:
                with service_errors(form, "tags"):
                    services.feature_tags_check(form.cleaned_data.get("tags"))
        existing = [form.initial.get("name") for form in kept]
        try:
            services.features_check(
                [_feature_item(form) for form in self._new_forms()],
                keys=[*entity.join_keys, *existing],
            )
        except ApplicationError as exc:
            problems.append(exc.message)
        if problems:
            raise forms.ValidationError(problems)

    def _new_forms(self) -> list[Any]:
        return [
            form
            for form in self.extra_forms
            if form.has_changed() and form not in self.deleted_forms
        ]


class FeatureInline(admin.TabularInline):
    model = Feature
    formset = FeatureFormSet
    fields = ["position", "name", "dtype", "description", "tags"]
    readonly_fields = ["position"]  # new features go last, as through the API
    extra = 0


class FeatureGroupForm(forms.ModelForm):
    """The admin applies the API's rules by calling the service's `group_fields_check`."""

    class Meta:
        model = FeatureGroup
        fields = [
            "name",
            "entity",
            "description",
            "source",
            "transformation_sql",
            "transformation_sources",
            "schedule",
            "ttl_seconds",
            "availability",
            "naive_timestamps_utc",
            "owner",
            "tags",
            "tasks",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        rules = {
            name: cleaned[name]
            for name in ("availability", "ttl_seconds", "schedule", "tags", "tasks")
            if name in cleaned
        }
        with service_errors(self):
            cleaned.update(
                services.group_fields_check(
                    rules, transformation_sql=cleaned.get("transformation_sql") or ""
                )
            )
        return cleaned


def _group_values(form: Any) -> dict[str, Any]:
    data = form.cleaned_data
    return {
        "description": data.get("description") or "",
        "source": data.get("source"),
        "transformation_sql": data.get("transformation_sql") or "",
        "transformation_sources": list(data.get("transformation_sources") or []),
        "schedule": data.get("schedule") or "",
        "ttl_seconds": data.get("ttl_seconds"),
        "availability": data.get("availability") or {},
        "naive_timestamps_utc": bool(data.get("naive_timestamps_utc")),
        "owner": data.get("owner"),
        "tags": data.get("tags") or {},
        "tasks": data.get("tasks") or [],
    }


@admin.register(FeatureGroup)
class FeatureGroupAdmin(OwnedModelAdmin):
    form = FeatureGroupForm
    list_display = ["name", "entity", "ttl_seconds", "owner", "schedule", "ingest_link"]
    list_filter = ["entity", "owner"]
    search_fields = ["name", "description"]
    inlines = [FeatureInline]
    filter_horizontal = ["transformation_sources"]
    actions = ["run_transformation", "materialise"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Its name is its address (and its beat task's), its entity keys its stored data.
        fixed = ["name", "entity"] if obj else []
        return [*fixed, "key_dtypes", "materialised_at"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "source":
            kwargs["queryset"] = self._usable_sources(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "transformation_sources":
            kwargs["queryset"] = self._usable_sources(request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _usable_sources(self, request: HttpRequest) -> Any:
        """A group reads its sources' data: only the user's teams' sources are offered."""
        user: Any = request.user
        if user.is_superuser:
            return DataSource.objects.all()
        return DataSource.objects.filter(owner__in=user.groups.all())

    def service_save(
        self, request: HttpRequest, obj: FeatureGroup, form: Any, change: bool
    ) -> FeatureGroup:
        # Its features are added by `save_formset`, through `group_update`.
        if not change:
            data = form.cleaned_data
            return services.group_create(
                name=data["name"], entity=data["entity"], features=[], **_group_values(form)
            )
        return services.group_update(group=obj, **_group_values(form))

    def service_delete(self, request: HttpRequest, obj: FeatureGroup) -> None:
        services.group_delete(group=obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # The transformation sources went through the service with the group (no save_m2m).
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        group: FeatureGroup = form.instance
        formset.deleted_objects = [f.instance for f in formset.deleted_forms if f.instance.pk]
        for feature in formset.deleted_objects:
            services.feature_delete(feature=feature)
        formset.changed_objects = []
        for item in formset.initial_forms:
            if item in formset.deleted_forms or not item.has_changed():
                continue
            services.feature_update(
                feature=item.instance,
                description=item.cleaned_data.get("description") or "",
                tags=item.cleaned_data.get("tags") or {},
            )
            formset.changed_objects.append((item.instance, item.changed_data))
        new = [_feature_item(item) for item in formset._new_forms()]
        if new:
            services.group_update(group=group, add_features=new)
        formset.new_objects = list(group.features.filter(name__in=[f["name"] for f in new]))

    @admin.display(description="Ingest")
    def ingest_link(self, group: FeatureGroup) -> str:
        url = reverse("admin:features_featuregroup_ingest", args=[group.pk])
        return format_html('<a href="{}">Ingest a file…</a>', url)

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<int:group_id>/ingest/",
                self.admin_site.admin_view(self.ingest_view),
                name="features_featuregroup_ingest",
            )
        ]
        return extra + super().get_urls()

    def ingest_view(self, request: HttpRequest, group_id: int) -> HttpResponse:
        group = get_object_or_404(FeatureGroup, pk=group_id)
        if not self.has_change_permission(request, group):
            return HttpResponseRedirect(reverse("admin:index"))
        form = IngestForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                rows, job = services.ingestion_start(
                    group=group, file=upload, size=upload.size or 0, user=request.user
                )
            except ApplicationError as exc:
                form.add_error("file", exc.message)
            else:
                if job is not None:
                    self.message_user(request, f"Ingestion running as job #{job.pk}.")
                else:
                    self.message_user(request, f"Ingested {rows} rows into {group.name}.")
                return HttpResponseRedirect(
                    reverse("admin:features_featuregroup_change", args=[group.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Ingest a file into {group.name}",
            "group": group,
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "features/admin_ingest.html", context)

    @admin.action(description="Run the transformation now")
    def run_transformation(self, request: HttpRequest, queryset: Any) -> None:
        for group in queryset:
            if not self.has_change_permission(request, group):
                self.message_user(request, f"{group.name}: not your team's.", level=messages.ERROR)
                continue
            try:
                job = services.transformation_start(group=group, user=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
            else:
                self.message_user(request, f"{group.name}: transformation job #{job.pk}.")

    @admin.action(description="Materialise into the online store")
    def materialise(self, request: HttpRequest, queryset: Any) -> None:
        for group in queryset:
            if not self.has_change_permission(request, group):
                self.message_user(request, f"{group.name}: not your team's.", level=messages.ERROR)
                continue
            job = services.materialisation_start(group=group, user=request.user)
            self.message_user(request, f"{group.name}: materialisation job #{job.pk}.")


class FeatureForm(forms.ModelForm):
    class Meta:
        model = Feature
        fields = ["description", "tags"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "tags" in cleaned:
            with service_errors(self, "tags"):
                cleaned["tags"] = services.feature_tags_check(cleaned["tags"])
        return cleaned


@admin.register(Feature)
class FeatureAdmin(OwnedModelAdmin):
    form = FeatureForm
    list_display = ["name", "group", "dtype", "description"]
    list_filter = ["group", "dtype"]
    search_fields = ["name", "description", "group__name"]
    fields = ["group", "name", "dtype", "position", "description", "tags", "statistics"]
    readonly_fields = ["group", "name", "dtype", "position", "statistics"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # added on its group's page, through `group_update`

    def service_save(self, request: HttpRequest, obj: Feature, form: Any, change: bool) -> Feature:
        data = form.cleaned_data
        return services.feature_update(
            feature=obj, description=data.get("description") or "", tags=data.get("tags") or {}
        )

    def service_delete(self, request: HttpRequest, obj: Feature) -> None:
        services.feature_delete(feature=obj)


class FeatureServiceForm(forms.ModelForm):
    """The admin applies the API's rule through the service's `service_check`: every group read
    is the service's team's, or granted."""

    class Meta:
        model = FeatureService
        fields = ["name", "description", "features", "owner"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        features = cleaned.get("features")
        if features is not None:
            with service_errors(self, "features"):
                services.service_check(
                    owner=cleaned.get("owner"),
                    features=list(features),
                    service=self.instance if self.instance.pk else None,
                )
        return cleaned


def _feature_refs(features: Any) -> list[str]:
    return [f"{feature.group.name}:{feature.name}" for feature in features]


@admin.register(FeatureService)
class FeatureServiceAdmin(OwnedModelAdmin):
    form = FeatureServiceForm
    list_display = ["name", "owner", "created_at"]
    search_fields = ["name", "description"]
    filter_horizontal = ["features"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["name", "created_by"] if obj else ["created_by"]

    def service_save(
        self, request: HttpRequest, obj: FeatureService, form: Any, change: bool
    ) -> FeatureService:
        data = form.cleaned_data
        refs = _feature_refs(data.get("features") or [])
        if not change:
            return services.service_create(
                name=data["name"],
                features=refs,
                description=data.get("description") or "",
                owner=data.get("owner"),
                user=request.user,
            )
        return services.service_update(
            service=obj,
            features=refs,
            description=data.get("description") or "",
            **_owner_change(form),
        )

    def service_delete(self, request: HttpRequest, obj: FeatureService) -> None:
        services.service_delete(service=obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # its features went through the service with it (no save_m2m)


@admin.register(OfflinePartition)
class OfflinePartitionAdmin(admin.ModelAdmin):
    list_display = ["group", "path", "origin", "rows", "max_available_at", "materialised"]
    list_filter = ["group", "origin"]

    def get_queryset(self, request: HttpRequest) -> Any:
        # Where a group's data lies is its data: its team's, or granted.
        user = request.user
        return (
            super()
            .get_queryset(request)
            .filter(readable_filter(user=user, model=FeatureGroup, path="group__"))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # partitions are immutable history

    # A partition goes only with its group (`group_delete` removes its file after commit); the
    # delete permission stays so that the group's delete page may list its partitions.
    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        raise PermissionDenied


@admin.register(OnlineValue)
class OnlineValueAdmin(admin.ModelAdmin):
    list_display = ["group", "entity_key", "event_timestamp", "updated_at"]
    list_filter = ["group"]
    search_fields = ["entity_key"]

    def get_queryset(self, request: HttpRequest) -> Any:
        # Feature values: the group's team, or a grant from it.
        user = request.user
        return (
            super()
            .get_queryset(request)
            .filter(readable_filter(user=user, model=FeatureGroup, path="group__"))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
