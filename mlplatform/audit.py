"""The audit trail: who changed what, when, and each field from which value to which.

django-auditlog records every save and delete of the models named in
AUDITLOG_INCLUDE_TRACKING_MODELS (settings), in the same transaction as the write. This module
adds what the platform needs around it: the actor of API calls authenticated by token (DRF
authenticates inside the view, after every middleware has run), and one reader for the pages and
the API, which only show the records of objects the reader may see.
"""

from typing import Any

from auditlog.middleware import AuditlogMiddleware
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject


def _request_user(request: HttpRequest) -> Any:
    user = getattr(request, "user", None)
    if isinstance(user, get_user_model()) and user.is_authenticated:
        return user
    return None


class AuditActorMiddleware(AuditlogMiddleware):
    """auditlog's middleware, with the actor looked up when a record is written.

    By then DRF has authenticated the request (it sets the token's user on the Django request),
    so API writes name their user, not "anonymous". Records written outside a request (Celery
    tasks, management commands) have no actor: the platform itself.
    """

    @staticmethod
    def _get_actor(request: HttpRequest) -> Any:
        return SimpleLazyObject(lambda: _request_user(request))

    @staticmethod
    def _get_remote_addr(request: HttpRequest) -> str | None:
        # The peer address only: X-Forwarded-For is whatever the client chose to write.
        return request.META.get("REMOTE_ADDR")


def audit_records(*, model: type[Model], pk: str | int) -> QuerySet[LogEntry]:
    """The audit records of one object, newest first (a deleted object keeps its own)."""
    content_type = ContentType.objects.get_for_model(model)
    return (
        LogEntry.objects.filter(content_type=content_type, object_pk=str(pk))
        .select_related("actor", "content_type")
        .order_by("-timestamp", "-pk")
    )


_ACTIONS = {
    LogEntry.Action.CREATE: "create",
    LogEntry.Action.UPDATE: "update",
    LogEntry.Action.DELETE: "delete",
    LogEntry.Action.ACCESS: "access",
}


def audit_record_as_dict(entry: LogEntry) -> dict[str, Any]:
    """One record as the API shows it: `changes` maps each field to `[from, to]`."""
    return {
        "id": entry.pk,
        "action": _ACTIONS.get(entry.action, str(entry.action)),
        "object": entry.object_repr,
        "actor": entry.actor.get_username() if entry.actor else None,
        "remote_addr": entry.remote_addr,
        "timestamp": entry.timestamp.isoformat(),
        "changes": _field_changes(entry),
    }


def _field_changes(entry: LogEntry) -> dict[str, Any]:
    """The record's changes to the model's own fields: auditlog also lists reverse relations
    (a model's versions, say) on a create, which are not a change of the object."""
    model = entry.content_type.model_class()
    changes = entry.changes_dict or {}
    if model is None:
        return dict(changes)
    own = {field.name for field in model._meta.get_fields() if field.concrete}
    return {name: change for name, change in changes.items() if name in own}


def tracked_model(label: str) -> type[Model] | None:
    """The model class behind `app_label.model` if the audit trail covers it, else None."""
    from auditlog.registry import auditlog

    for model in auditlog.get_models():
        if model._meta.label_lower == label.lower():
            return model
    return None


def audit_visible(*, user: Any, obj: Model) -> bool:
    """An object's trail is shown to those who may change the object, and to superusers.

    The per-object rules (tenancy) answer `has_perm` for owned objects; an API token's own
    record is its user's.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if getattr(obj, "user_id", None) == user.pk and obj._meta.label_lower == "accounts.apitoken":
        return True
    return bool(user.has_perm(f"{obj._meta.app_label}.change_{obj._meta.model_name}", obj))
