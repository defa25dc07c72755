"""Who may do what to which object: the one set of permission rules (django-rules).

Every owned object belongs to a team (a Django group) through its `owner`, or through its parent's
(a feature through its group, a version through its model). The rules, checked with
`user.has_perm(perm, obj)` by the API, the pages and the admin alike:

- **write** (`<app>.change_<model>`, `<app>.delete_<model>`, `registry.add_modelversion` on a
  model): the Django model permission *and* membership of the owning team, or a superuser. An
  object without an owner is written by superusers only.
- **read of data** (`<app>.read_<model>_data`: a feature group's values, a model's prediction
  log, a job's input and output): membership of the owning team, a `Grant` to one of the user's
  teams, or a superuser (a job's submitter too). Catalog metadata stays readable by anyone
  signed in.
- **hand to a team** (`tenancy.assign_team` on a Group): members of that team, or a superuser.

Without an object (`user.has_perm(perm)`) the rules answer no, and Django's ModelBackend, next in
AUTHENTICATION_BACKENDS, answers for the model-level permission as before.
"""

from typing import Any

import rules
from django.contrib.auth.backends import ModelBackend
from django.contrib.contenttypes.models import ContentType

from tenancy.models import Grant

# Objects whose team is their parent's: label -> the attribute that leads to the parent.
PARENTS = {
    "features.feature": "group",
    "features.offlinepartition": "group",
    "features.onlinevalue": "group",
    "registry.modelversion": "model",
    "registry.modelalias": "model",
    "registry.aliaschange": "model",
    "serving.predictionlog": "model",
    "batch.batchjob": "job",
}

# Models with an owner, by app: their change/delete permissions follow the team rule.
OWNED = {
    "registry": ("registeredmodel", "modelversion", "modelalias"),
    "features": ("entity", "datasource", "featuregroup", "feature", "featureservice"),
    "jobs": ("job",),
    "batch": ("batchschedule",),
}

# Models whose data (not their catalog entry) is read under the team rule or a grant.
DATA = ("features.featuregroup", "registry.registeredmodel", "jobs.job")

_model_backend = ModelBackend()


def owned_root(obj: Any) -> Any:
    """The object that carries the owner: `obj` itself, or its parent (a feature's group)."""
    while obj is not None and obj._meta.label_lower in PARENTS:
        obj = getattr(obj, PARENTS[obj._meta.label_lower])
    return obj


def owner_id_of(obj: Any) -> int | None:
    root = owned_root(obj)
    return getattr(root, "owner_id", None)


def team_ids(user: Any) -> frozenset[int]:
    """The ids of the user's teams, read once per user object (like Django's permission cache)."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_tenancy_team_ids", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("pk", flat=True))
        user._tenancy_team_ids = cached
    return cached


def granted(teams: frozenset[int], obj: Any) -> bool:
    """Whether one of `teams` holds a read grant on `obj` (or on the object owning its data)."""
    root = owned_root(obj)
    if root is None or not teams:
        return False
    content_type = ContentType.objects.get_for_model(type(root))
    return Grant.objects.filter(
        team_id__in=teams, content_type=content_type, object_id=root.pk
    ).exists()


def has_model_perm(perm: str) -> Any:
    """The Django model permission itself (ModelBackend), so a rule never asks itself."""

    @rules.predicate(name=f"has_model_perm:{perm}")
    def predicate(user: Any) -> bool:
        return bool(_model_backend.has_perm(user, perm))

    return predicate


@rules.predicate
def is_active_user(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


@rules.predicate
def is_superuser(user: Any) -> bool:
    return bool(getattr(user, "is_superuser", False) and is_active_user(user))


@rules.predicate
def is_owner_member(user: Any, obj: Any) -> bool:
    """A member of the team that owns `obj`; nobody is a member of no team."""
    if obj is None:
        return False
    owner = owner_id_of(obj)
    return owner is not None and owner in team_ids(user)


@rules.predicate
def is_submitter(user: Any, obj: Any) -> bool:
    root = owned_root(obj)
    submitter = getattr(root, "submitted_by_id", None)
    return submitter is not None and submitter == getattr(user, "pk", None)


@rules.predicate
def holds_grant(user: Any, obj: Any) -> bool:
    return obj is not None and granted(team_ids(user), obj)


@rules.predicate
def is_team_member(user: Any, team: Any) -> bool:
    return team is not None and team.pk in team_ids(user)


def _register() -> None:
    team_write = is_superuser | is_owner_member
    for app, models in OWNED.items():
        for model in models:
            for action in ("change", "delete"):
                perm = f"{app}.{action}_{model}"
                rules.set_perm(perm, is_active_user & has_model_perm(perm) & team_write)
            view = f"{app}.view_{model}"
            # The catalog is open: viewing an entry (not its data) needs the model permission.
            rules.set_perm(
                view,
                is_active_user & (has_model_perm(view) | has_model_perm(f"{app}.change_{model}")),
            )
    # Uploading a version or moving an alias writes to the model: its team's members only.
    rules.set_perm(
        "registry.add_modelversion",
        is_active_user & has_model_perm("registry.add_modelversion") & team_write,
    )
    # A job is a record of work done for a team: its team and its submitter see and cancel it;
    # a grant lets another team read its data. No model permission: starting the work needed one.
    job_team = is_superuser | is_owner_member | is_submitter
    rules.set_perm("jobs.view_job", is_active_user & (job_team | holds_grant))
    rules.set_perm("jobs.cancel_job", is_active_user & job_team)
    for label in DATA:
        app, model = label.split(".")
        extra = is_submitter if label == "jobs.job" else rules.always_false
        rules.set_perm(
            f"{app}.read_{model}_data", is_active_user & (team_write | extra | holds_grant)
        )
    # Using a data source in a feature group reads its data: the source's team only.
    rules.set_perm("features.use_datasource", is_active_user & team_write)
    rules.set_perm("tenancy.assign_team", is_active_user & (is_superuser | is_team_member))


_register()
