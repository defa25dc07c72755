"""Admin views of monitoring's records: read-only lists. References are set through the API
(`/api/v1/models/{name}/versions/{n}/reference`) or taken from evaluation datasets; windows and
alerts are computed by the monitoring job; feedback comes from `…/feedback`. Each lists only
what the user's team may read (its models and feature groups, or granted ones)."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from features.models import FeatureGroup
from monitoring.models import Alert, AlertRule, Feedback, MonitoringWindow, ReferenceProfile
from registry.models import RegisteredModel
from tenancy.services import readable_filter


class _ReadOnly(admin.ModelAdmin):
    # The path from a row to its registered model, whose team's data it is.
    model_path = "model__"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Live figures, labels and alerts are the model's team's data, or granted.
        return (
            super()
            .get_queryset(request)
            .filter(readable_filter(user=request.user, model=RegisteredModel, path=self.model_path))
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ReferenceProfile)
class ReferenceProfileAdmin(_ReadOnly):
    model_path = "version__model__"
    list_display = ["version", "source", "rows", "created_by", "updated_at"]
    list_filter = ["source"]
    search_fields = ["version__model__name"]


@admin.register(MonitoringWindow)
class MonitoringWindowAdmin(_ReadOnly):
    list_display = ["version", "role", "granularity", "start", "requests", "rows", "computed_at"]
    list_filter = ["granularity", "role"]
    search_fields = ["model__name"]
    date_hierarchy = "start"


@admin.register(Feedback)
class FeedbackAdmin(_ReadOnly):
    list_display = ["model", "request_id", "actual", "received_at"]
    search_fields = ["model__name", "request_id"]


@admin.register(AlertRule)
class AlertRuleAdmin(_ReadOnly):
    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # A rule names a model or a feature group: either one's team, or granted.
        user = request.user
        return admin.ModelAdmin.get_queryset(self, request).filter(
            readable_filter(user=user, model=RegisteredModel, path="model__")
            | readable_filter(user=user, model=FeatureGroup, path="feature_group__")
        )

    list_display = ["__str__", "metric", "column", "threshold", "enabled", "created_at"]
    list_filter = ["metric", "enabled"]


@admin.register(Alert)
class AlertAdmin(_ReadOnly):
    model_path = "rule__model__"
    list_display = ["rule", "version", "column", "state", "value", "started_at", "resolved_at"]
    list_filter = ["state"]
