"""Writes of API tokens: create (the key is returned once and only its digest is kept), revoke."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiToken
from accounts.selectors import scopable_models, token_get
from mlplatform.errors import ApplicationError

# `last_used` is written at most this often per token, and only when a token is looked up in the
# database (not on a cache hit), so using a token costs no write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# The longest lifetime a user may ask for where the operator allows tokens without expiry.
LONGEST_DAYS = 36_500


def token_lifetime(*, expires_in_days: float | None, no_expiry: bool) -> timedelta | None:
    """The lifetime a new token gets: the asked number of days, or MLPLATFORM_TOKEN_TTL_DAYS when
    none is asked; no expiry only when the operator allows it (MLPLATFORM_TOKEN_TTL_DAYS=never).

    Raises:
        ApplicationError: a lifetime over the operator's maximum, or not positive.
    """
    longest = settings.MLPLATFORM_TOKEN_TTL_DAYS
    if no_expiry:
        if longest is not None:
            raise ApplicationError(
                f"expires_in_days: tokens expire within {longest:g} days on this platform "
                "(MLPLATFORM_TOKEN_TTL_DAYS).",
                extra={"field": "expires_in_days"},
            )
        return None
    if expires_in_days is None:
        return None if longest is None else timedelta(days=longest)
    most_days = LONGEST_DAYS if longest is None else longest
    if not 0 < expires_in_days <= most_days:  # NaN fails too
        most = (
            f" and at most {LONGEST_DAYS}"
            if longest is None
            else f" and at most {longest:g} (MLPLATFORM_TOKEN_TTL_DAYS)"
        )
        raise ApplicationError(
            f"expires_in_days: must be more than 0{most}.", extra={"field": "expires_in_days"}
        )
    return timedelta(days=expires_in_days)


def token_create(
    *,
    user: Any,
    name: str,
    expires_in_days: float | None = None,
    no_expiry: bool = False,
    scope: str = ApiToken.Scope.FULL,
    predict_models: Sequence[str] = (),
) -> tuple[ApiToken, str]:
    """Create a named token for `user`; returns it and its key, which is shown once and never
    stored (only its SHA-512 digest is).

    Raises:
        ApplicationError: an empty or taken name, a lifetime the operator does not allow, a
            predict scope without models or with unknown ones, models on a full token.
    """
    name = (name or "").strip()
    if not name:
        raise ApplicationError("name: give the token a name.", extra={"field": "name"})
    if len(name) > ApiToken._meta.get_field("name").max_length:  # type: ignore[operator]
        raise ApplicationError("name: at most 100 characters.", extra={"field": "name"})
    lifetime = token_lifetime(expires_in_days=expires_in_days, no_expiry=no_expiry)
    if scope not in ApiToken.Scope.values:
        raise ApplicationError(
            f"scope: one of {', '.join(ApiToken.Scope.values)}.", extra={"field": "scope"}
        )
    wanted = sorted(set(predict_models))
    if scope == ApiToken.Scope.FULL and wanted:
        raise ApplicationError(
            "models: only a token with the predict scope is limited to models.",
            extra={"field": "models"},
        )
    models = list(scopable_models().filter(name__in=wanted))
    if scope == ApiToken.Scope.PREDICT:
        if not wanted:
            raise ApplicationError(
                "models: a predict-only token names the models it may predict with.",
                extra={"field": "models"},
            )
        unknown = sorted(set(wanted) - {model.name for model in models})
        if unknown:
            raise ApplicationError(
                f"models: no model named {', '.join(unknown)}.", extra={"field": "models"}
            )
    try:
        with transaction.atomic():
            token, key = ApiToken.objects.create(user, expiry=lifetime, name=name, scope=scope)
            token.predict_models.set(models)
    except IntegrityError:
        raise ApplicationError(
            f"name: you already have a token named {name!r}.", extra={"field": "name"}
        ) from None
    return token, key


def token_revoke(*, user: Any, token_id: int) -> None:
    """Delete one of the user's own tokens; requests with it are refused at once on the routes
    that look tokens up each time and within MLPLATFORM_TOKEN_CACHE_SECONDS on the hot paths.

    Raises:
        NotFoundError: the user has no such token.
    """
    token_get(user=user, token_id=token_id).delete()


def token_used(*, token: ApiToken) -> None:
    """Record that a token was just used, at most once per LAST_USED_RESOLUTION."""
    now = timezone.now()
    if token.last_used is not None and now - token.last_used < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used=now)
    token.last_used = now
