from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by their owners (the Tokens page, the API, `manage.py api_token`); here
    an admin sees who holds which and may revoke them. Neither key nor digest is shown."""

    list_display = ("name", "prefix", "user", "scope", "created", "expiry", "last_used")
    list_filter = ("scope",)
    search_fields = ("name", "user__username")
    fields = ("name", "prefix", "user", "scope", "predict_models", "created", "expiry", "last_used")
    readonly_fields = fields
    ordering = ("-created",)

    @admin.display(description="prefix")
    def prefix(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
