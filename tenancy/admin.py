"""Admin for grants, and the base every admin of a team-owned model uses: change and delete
follow the team rules (tenancy/rules.py), an owner can only be one of the user's teams, and
saves and deletes go through the app's services."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from auditlog.mixins import AuditlogHistoryAdminMixin
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import ForeignKey, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from rules.contrib.admin import ObjectPermissionsModelAdmin

from mlplatform.errors import ApplicationError
from tenancy import services
from tenancy.models import Grant


@contextmanager
def service_errors(form: forms.BaseForm, field: str | None = None) -> Iterator[None]:
    """Turn what a service's check raises into an error of `form`, so a refusal is shown on the
    admin page before anything is saved. The error goes on `field`, or else on the field its
    message names ("availability: ..."), or else on the whole form."""
    try:
        yield
    except ApplicationError as exc:
        named, _, rest = exc.message.partition(": ")
        if field is None and rest and named in form.fields:
            field = named
        message = exc.message.removeprefix(f"{field}: ") if field else exc.message
        form.add_error(field, message)
    except ValidationError as exc:
        form.add_error(field, ValidationError(exc.messages))


class OwnedModelAdmin(AuditlogHistoryAdminMixin, ObjectPermissionsModelAdmin):
    """`has_change_permission(request, obj)` and `has_delete_permission(request, obj)` ask the
    rules with the object: another team's object opens read-only and cannot be deleted.

    Each object's audit trail (django-auditlog) is a column of the list and a page of its own,
    for those who may change the object, as on the pages and the API (mlplatform/audit.py).

    Every save, delete and bulk delete goes through `service_save` and `service_delete`, which
    an admin of a model with services overrides to call the same service functions the API
    calls, so that what a service cleans up (stored files, online values, beat tasks) or records
    (alias history) is cleaned up or recorded however the object was changed. The form's
    `clean()` calls the service's own check functions, so a refusal is a form error on the page,
    before anything is saved. A delete the database refuses (a protected relation) is shown on
    Django's "cannot delete" page before any service runs; a delete a service refuses is rolled
    back whole and its reason shown as an error message.
    """

    show_auditlog_history_link = True

    def service_save(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> models.Model:
        """Save `obj` (add or change) through the app's service and return the saved instance;
        the default, for models with no service, is Django's own save."""
        super().save_model(request, obj, form, change)
        return obj

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        """Delete `obj` through the app's service; the default, for models with no service, is
        Django's own delete."""
        obj.delete()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = self.service_save(request, obj, form, change)
        if saved is not obj:
            # A create service builds its own instance: the admin's carries on as that one.
            obj.pk = saved.pk
            obj._state.adding = False
            obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.service_delete(request, obj)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ApplicationError as exc:
            # The service refused; the view's transaction rolled back, nothing was deleted.
            self.message_user(request, exc.message, messages.ERROR)
            opts = self.model._meta
            return HttpResponseRedirect(
                reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change",
                    args=[object_id],
                    current_app=self.admin_site.name,
                )
            )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request)
        if actions.get("delete_selected") is not None:
            _, name, description = actions["delete_selected"]
            actions["delete_selected"] = (_delete_selected, name, description)
        return actions

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # One service call per object, so each cleans up after itself; all or none is deleted.
        with transaction.atomic(using=queryset.db):
            for obj in queryset:
                self.service_delete(request, obj)

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


def _delete_selected(
    modeladmin: OwnedModelAdmin, request: HttpRequest, queryset: QuerySet
) -> HttpResponse | None:
    """Django's "delete selected" action, with a service's refusal shown as an error message
    (`delete_queryset` rolled back the whole selection)."""
    try:
        return delete_selected(modeladmin, request, queryset)
    except ApplicationError as exc:
        modeladmin.message_user(request, exc.message, messages.ERROR)
        return None


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
