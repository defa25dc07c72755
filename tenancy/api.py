"""DRF permission classes that apply the team rules (tenancy/rules.py) to API views."""

from typing import Any

from rest_framework.permissions import DjangoModelPermissions

from mlplatform.api import ModelPermissions
from tenancy import services

_CHANGE = "%(app_label)s.change_%(model_name)s"
_DELETE = "%(app_label)s.delete_%(model_name)s"


class TeamPermissions(ModelPermissions):
    """The model permission by method (ModelPermissions), then, for the object a view passes to
    `check_object_permissions`, the same permission through the team rules: a 403 naming the
    owning team for everyone else. Reads of catalog objects stay open to any signed-in user.

    A view may name the object permission per method in `object_permissions`, e.g.
    `{"POST": "registry.add_modelversion"}`."""

    object_perms_map: dict[str, list[str]] = {
        "GET": [],
        "HEAD": [],
        "OPTIONS": [],
        "POST": [_CHANGE],
        "PUT": [_CHANGE],
        "PATCH": [_CHANGE],
        "DELETE": [_DELETE],
    }

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        named = getattr(view, "object_permissions", {}).get(request.method)
        templates = [named] if named else self.object_perms_map.get(request.method, [])
        meta = {"app_label": obj._meta.app_label, "model_name": obj._meta.model_name}
        for template in templates:
            services.write_check(user=request.user, perm=template % meta, obj=obj)
        return True


class TeamChangePermissions(TeamPermissions):
    """For actions on an existing object sent as POST (ingest, run): they need `change`."""

    perms_map = {**DjangoModelPermissions.perms_map, "POST": [_CHANGE]}
