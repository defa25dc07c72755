"""Deleting through the admin as a person does (one object's delete page, or "delete selected"
on the changelist), and whether the audit trail kept the delete."""

from typing import Any

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.test import Client


def deleted_in_audit_trail(obj: Model) -> bool:
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(type(obj)),
        object_pk=str(obj.pk),
        action=LogEntry.Action.DELETE,
    ).exists()


def _changelist(model: type[Model]) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def delete_one(client: Client, obj: Model) -> Any:
    return client.post(f"{_changelist(type(obj))}{obj.pk}/delete/", {"post": "yes"})


def delete_selected(client: Client, objs: list[Any]) -> Any:
    return client.post(
        _changelist(type(objs[0])),
        {"action": "delete_selected", "_selected_action": [o.pk for o in objs], "post": "yes"},
    )
