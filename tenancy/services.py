"""Owners and grants: which team a new object belongs to, checks that raise 403, read grants.

The rules themselves are in `tenancy/rules.py`; every check here goes through `user.has_perm`.
"""

import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Q

from mlplatform.errors import ApplicationError, ConflictError, PermissionDeniedError
from tenancy.models import Grant
from tenancy.rules import DATA, owned_root, owner_id_of, team_ids


def owner_resolve(owner: Group | str | None) -> Group | None:
    """A team by name (or the Group itself); None for no name.

    Raises:
        ApplicationError: there is no team of that name.
    """
    if isinstance(owner, Group):
        return owner
    if not owner:
        return None
    group = Group.objects.filter(name=owner).first()
    if group is None:
        raise ApplicationError(f"owner: there is no team named {owner!r}.")
    return group


def owner_assign_check(*, user: Any, owner: Group | None) -> None:
    """A user may hand an object only to a team they belong to; only superusers may leave an
    object without a team (which makes it admin-only).

    Raises:
        PermissionDeniedError: not a member of `owner`, or `owner` is None for a non-superuser.
    """
    if user is None:  # trusted callers: management commands, the demo
        return
    if owner is None:
        if not getattr(user, "is_superuser", False):
            raise PermissionDeniedError(
                "owner: only an admin may leave an object without a team (it becomes admin-only)."
            )
        return
    if not user.has_perm("tenancy.assign_team", owner):
        raise PermissionDeniedError(f"owner: you are not a member of the team {owner.name}.")


def owner_for_create(*, user: Any, owner: Group | str | None = None) -> Group | None:
    """The team a new object belongs to: the one named (the user must be in it), else the
    user's first team by name. A superuser without a team creates admin-only objects.

    Raises:
        ApplicationError: no team of that name.
        PermissionDeniedError: not a member of the named team, or the user belongs to no team.
    """
    team = owner_resolve(owner)
    if user is None:
        return team
    if team is None and getattr(user, "is_authenticated", False):
        team = user.groups.order_by("name").first()
    if team is None:
        if getattr(user, "is_superuser", False):
            return None
        raise PermissionDeniedError(
            "owner: you belong to no team, and everything created here belongs to one; "
            "ask an admin to add you to a team."
        )
    owner_assign_check(user=user, owner=team)
    return team


def _team_name(obj: Any) -> str | None:
    root = owned_root(obj)
    owner = getattr(root, "owner", None) if root is not None else None
    return owner.name if owner is not None else None


def refusal(*, perm: str, obj: Any) -> str:
    """The 403 message: what is needed, and whose the object is."""
    team = _team_name(obj)
    label = str(obj)
    if perm.endswith("_data"):
        who = f"the team {team}" if team else "an admin (it has no team)"
        return f"Reading the data of {label} needs membership of {who} or a grant from it."
    if team is None:
        return f"{label} has no team: only an admin may change it."
    return f"Only members of the team {team} with the permission {perm} may change {label}."


def write_check(*, user: Any, perm: str, obj: Any) -> None:
    """Raises PermissionDeniedError (403) unless the rules give `user` `perm` on `obj`."""
    if not user.has_perm(perm, obj):
        raise PermissionDeniedError(refusal(perm=perm, obj=obj))


def _data_perm(obj: Any) -> str:
    root = owned_root(obj)
    label = root._meta.label_lower
    if label not in DATA:
        raise ValueError(f"{label} has no data permission")
    app, model = label.split(".")
    return f"{app}.read_{model}_data"


def read_check(*, user: Any, obj: Any) -> None:
    """Raises PermissionDeniedError (403) unless `user` may read the data of `obj` (its team,
    a grant, or a superuser)."""
    perm = _data_perm(obj)
    if not user.has_perm(perm, owned_root(obj)):
        raise PermissionDeniedError(refusal(perm=perm, obj=owned_root(obj)))


def readable_filter(*, user: Any, model: Any, path: str = "") -> Q:
    """A filter on `model` (or on the owned object at `path`, e.g. "group__") keeping the rows
    whose data `user` may read. Superusers: everything."""
    if getattr(user, "is_superuser", False) and user.is_active:
        return Q()
    teams = team_ids(user)
    content_type = ContentType.objects.get_for_model(model)
    granted = Grant.objects.filter(team_id__in=teams, content_type=content_type).values("object_id")
    return Q(**{f"{path}owner__in": teams}) | Q(**{f"{path}pk__in": granted})


def team_may_read(*, team: Group | None, obj: Any) -> bool:
    """Whether a team (not a user) may read the data of `obj`: it owns it or holds a grant. An
    object without a team may be read only by objects without a team."""
    owner = owner_id_of(obj)
    if team is None:
        return owner is None
    if owner == team.pk:
        return True
    root = owned_root(obj)
    return Grant.objects.filter(
        team=team, content_type=ContentType.objects.get_for_model(type(root)), object_id=root.pk
    ).exists()


def grant_create(*, team: Group, target: Any, user: Any = None, note: str = "") -> Grant:
    """Let `team` read the data of `target`. The granting user must be able to change `target`
    (a member of its team with the permission, or a superuser).

    Raises:
        PermissionDeniedError: the user may not grant on `target`.
        ConflictError: the grant exists.
    """
    root = owned_root(target)
    if user is not None:
        app, model = root._meta.label_lower.split(".")
        write_check(user=user, perm=f"{app}.change_{model}", obj=root)
    grant = Grant(
        team=team,
        content_type=ContentType.objects.get_for_model(type(root)),
        object_id=root.pk,
        note=note,
        granted_by=user if getattr(user, "is_authenticated", False) else None,
    )
    try:
        with transaction.atomic():
            grant.full_clean(validate_unique=False)
            grant.save()
    except IntegrityError as exc:
        raise ConflictError(f"{team.name} already holds that grant.") from exc
    transaction.on_commit(read_cache_clear)
    return grant


def grant_revoke(*, grant: Grant) -> None:
    grant.delete()
    transaction.on_commit(read_cache_clear)


# --- hot paths --------------------------------------------------------------------------------
# Online feature reads sit on the inference path: their read check is cached per process for
# MLPLATFORM_TOKEN_CACHE_SECONDS, the same bound within which a deleted token is refused.

_read_cache: dict[tuple[Any, ...], tuple[float, bool]] = {}
_read_lock = threading.Lock()
_READ_CACHE_MAX = 10_000


def read_cache_clear(*args: Any, **kwargs: Any) -> None:
    with _read_lock:
        _read_cache.clear()


def can_read_cached(*, user: Any, obj: Any) -> bool:
    """`user.has_perm(read data, obj)`, remembered for a few seconds per (user, object, owner)."""
    key = (getattr(user, "pk", None), obj._meta.label_lower, obj.pk, owner_id_of(obj))
    now = time.monotonic()
    with _read_lock:
        cached = _read_cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    allowed = bool(user.has_perm(_data_perm(obj), owned_root(obj)))
    expires = now + float(settings.MLPLATFORM_TOKEN_CACHE_SECONDS)
    with _read_lock:
        if len(_read_cache) >= _READ_CACHE_MAX:
            _read_cache.clear()
        _read_cache[key] = (expires, allowed)
    return allowed


def read_check_cached(*, user: Any, objs: Any) -> None:
    """read_check for several objects, through the per-process cache.

    Raises:
        PermissionDeniedError: one of them is not readable by `user`.
    """
    for obj in objs:
        if not can_read_cached(user=user, obj=obj):
            raise PermissionDeniedError(refusal(perm=_data_perm(obj), obj=owned_root(obj)))
