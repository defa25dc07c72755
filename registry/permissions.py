"""Who may change a registered model: its owning team (a Django group) or superusers."""

from typing import Any

from rest_framework import status

from mlplatform.api import ApplicationError
from registry.models import RegisteredModel


class PermissionDeniedError(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN


def model_can_write(*, user: Any, model: RegisteredModel, perm: str = "add_modelversion") -> bool:
    """Owner-group members and superusers; for a model with no owner, holders of `perm`."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if model.owner_id is not None:
        return user.groups.filter(pk=model.owner_id).exists()
    return bool(user.has_perm(f"registry.{perm}"))


def model_write_check(*, user: Any, model: RegisteredModel, perm: str = "add_modelversion") -> None:
    """Raises PermissionDeniedError (403) unless `user` may change `model`."""
    if not model_can_write(user=user, model=model, perm=perm):
        team = f"members of {model.owner.name}" if model.owner_id and model.owner else None
        who = team or f"users with the registry.{perm} permission"
        raise PermissionDeniedError(f"Only {who} may change the model {model.name}.")


def owner_check(*, user: Any, owner: Any) -> None:
    """A user may only hand a new model to a team they belong to (superusers: any team)."""
    if owner is None or getattr(user, "is_superuser", False):
        return
    if not user.groups.filter(pk=owner.pk).exists():
        raise PermissionDeniedError(f"You are not a member of the team {owner.name}.")
