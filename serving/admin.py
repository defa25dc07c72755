from django.contrib import admin

from serving.models import PredictionLog


@admin.register(PredictionLog)
class PredictionLogAdmin(admin.ModelAdmin):
    """Read-only: the log records what was served; nobody edits history."""

    list_display = ["created_at", "model", "version", "protocol", "n_rows", "latency_ms"]
    list_filter = ["protocol", "model"]
    search_fields = ["request_id", "model__name"]
    list_select_related = ["model", "version"]
    readonly_fields = [f.name for f in PredictionLog._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
