from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from features import ingestion, services
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
from tenancy.admin import OwnedModelAdmin
from tenancy.services import readable_filter


@admin.register(Entity)
class EntityAdmin(OwnedModelAdmin):
    list_display = ["name", "join_keys", "created_at"]
    search_fields = ["name", "description"]


@admin.register(DataSource)
class DataSourceAdmin(OwnedModelAdmin):
    list_display = ["name", "kind", "path", "owner", "created_at"]
    list_filter = ["kind", "owner"]
    search_fields = ["name", "description"]


class FeatureInline(admin.TabularInline):
    model = Feature
    fields = ["position", "name", "dtype", "description", "tags"]
    extra = 0


class FeatureGroupForm(forms.ModelForm):
    """The admin applies the same rules as the API (availability rule, cron schedule)."""

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

    def clean_availability(self) -> dict[str, Any]:
        try:
            return ingestion.availability_validate(self.cleaned_data.get("availability"))
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc

    def clean_schedule(self) -> str:
        schedule = (self.cleaned_data.get("schedule") or "").strip()
        if schedule and len(schedule.split()) != 5:
            raise forms.ValidationError("Use a five-field cron expression, e.g. '0 3 * * *'.")
        return schedule


@admin.register(FeatureGroup)
class FeatureGroupAdmin(OwnedModelAdmin):
    form = FeatureGroupForm
    list_display = ["name", "entity", "ttl_seconds", "owner", "schedule", "ingest_link"]
    list_filter = ["entity", "owner"]
    search_fields = ["name", "description"]
    inlines = [FeatureInline]
    filter_horizontal = ["transformation_sources"]
    readonly_fields = ["key_dtypes", "materialised_at"]
    actions = ["run_transformation", "materialise"]

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

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # The beat task follows the group's schedule however the group was edited.
        services.group_schedule_sync(group=form.instance)

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


@admin.register(Feature)
class FeatureAdmin(OwnedModelAdmin):
    list_display = ["name", "group", "dtype", "description"]
    list_filter = ["group", "dtype"]
    search_fields = ["name", "description", "group__name"]
    readonly_fields = ["statistics"]


class FeatureServiceForm(forms.ModelForm):
    """The admin applies the API's rule: every group read is the service's team's, or granted."""

    class Meta:
        model = FeatureService
        fields = ["name", "description", "features", "owner", "created_by"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        features = cleaned.get("features")
        if features is not None:
            versions = self.instance.model_versions.all() if self.instance.pk else []
            try:
                services.service_features_check(
                    owner=cleaned.get("owner"), features=list(features), versions=versions
                )
            except ApplicationError as exc:
                self.add_error("features", exc.message)
        return cleaned


@admin.register(FeatureService)
class FeatureServiceAdmin(OwnedModelAdmin):
    form = FeatureServiceForm
    list_display = ["name", "owner", "created_at"]
    search_fields = ["name", "description"]
    filter_horizontal = ["features"]


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
