"""Admin views of monitoring's records: read-only lists. References are set through the API
(`/api/v1/models/{name}/versions/{n}/reference`) or taken from evaluation datasets; windows and
alerts are computed by the monitoring job; feedback comes from `…/feedback`."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from monitoring.models import Alert, AlertRule, Feedback, MonitoringWindow, ReferenceProfile


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ReferenceProfile)
class ReferenceProfileAdmin(_ReadOnly):
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
    list_display = ["__str__", "metric", "column", "threshold", "enabled", "created_at"]
    list_filter = ["metric", "enabled"]


@admin.register(Alert)
class AlertAdmin(_ReadOnly):
    list_display = ["rule", "version", "column", "state", "value", "started_at", "resolved_at"]
    list_filter = ["state"]
