from typing import Any

from django.contrib import admin
from django.db.models import QuerySet

from registry.models import RegisteredModel
from serving.models import PredictionLog
from tenancy.services import readable_filter


@admin.register(PredictionLog)
class PredictionLogAdmin(admin.ModelAdmin):
    """Read-only: the log records what was served; nobody edits history."""

    list_display = ["created_at", "model", "version", "protocol", "n_rows", "latency_ms"]
    list_filter = ["protocol", "model"]
    search_fields = ["request_id", "model__name"]
    list_select_related = ["model", "version"]
    readonly_fields = [f.name for f in PredictionLog._meta.fields]

    def get_queryset(self, request: Any) -> QuerySet[PredictionLog]:
        # What was sent and predicted is the model's team's data, or granted.
        return (
            super()
            .get_queryset(request)
            .filter(readable_filter(user=request.user, model=RegisteredModel, path="model__"))
        )

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
