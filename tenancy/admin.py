"""Admin for grants, and the base every admin of a team-owned model uses: change and delete
follow the team rules (tenancy/rules.py), and an owner can only be one of the user's teams."""

from typing import Any

from auditlog.mixins import AuditlogHistoryAdminMixin
from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import ForeignKey
from django.http import HttpRequest, HttpResponse
from rules.contrib.admin import ObjectPermissionsModelAdmin

from tenancy import services
from tenancy.models import Grant


class OwnedModelAdmin(AuditlogHistoryAdminMixin, ObjectPermissionsModelAdmin):
    """`has_change_permission(request, obj)` and `has_delete_permission(request, obj)` ask the
    rules with the object: another team's object opens read-only and cannot be deleted.

    Each object's audit trail (django-auditlog) is a column of the list and a page of its own,
    for those who may change the object, as on the pages and the API (mlplatform/audit.py).
    """

    show_auditlog_history_link = True

    def auditlog_history_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_change_permission(request, obj):
            raise PermissionDenied
        return super().auditlog_history_view(request, object_id, extra_context)

    def formfield_for_foreignkey(
        self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> Any:
        user: Any = request.user
        if db_field.name == "owner" and not user.is_superuser:
            # Only one's own teams; required, since an object without a team is admin-only.
            kwargs["queryset"] = user.groups.order_by("name")
            kwargs["required"] = True
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        user: Any = request.user
        first = user.groups.order_by("name").first()
        if first is not None and "owner" in {f.name for f in self.model._meta.fields}:
            initial.setdefault("owner", first.pk)
        return initial


class GrantForm(forms.ModelForm):
    request: HttpRequest | None = None

    class Meta:
        model = Grant
        fields = ["team", "content_type", "object_id", "access", "note"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        content_type, object_id = cleaned.get("content_type"), cleaned.get("object_id")
        if content_type is None or object_id is None:
            return cleaned
        target = content_type.get_all_objects_for_this_type(pk=object_id).first()
        if target is None:
            self.add_error("object_id", f"There is no {content_type.model} #{object_id}.")
            return cleaned
        user = self.request.user if self.request else None
        perm = f"{content_type.app_label}.change_{content_type.model}"
        try:
            services.write_check(user=user, perm=perm, obj=target)
        except services.PermissionDeniedError as exc:
            self.add_error(None, f"Only its own team grants reads of it. {exc.message}")
        return cleaned


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    form = GrantForm
    list_display = ["team", "content_type", "object_id", "target", "access", "granted_by"]
    list_filter = ["team", "content_type"]
    readonly_fields = ["granted_by", "created_at"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # type: ignore[override]
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request  # type: ignore[attr-defined]
        return form

    def save_model(self, request: HttpRequest, obj: Grant, form: Any, change: bool) -> None:
        if not change:
            obj.granted_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request)  # revoke and grant anew

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None or obj.target is None:
            return super().has_delete_permission(request, obj)
        perm = f"{obj.content_type.app_label}.change_{obj.content_type.model}"
        return super().has_delete_permission(request, obj) and request.user.has_perm(
            perm, obj.target
        )
