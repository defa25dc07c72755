"""Reads of API tokens."""

import math
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from accounts.models import ApiToken
from mlplatform.errors import NotFoundError


def scopable_models() -> QuerySet[Any]:
    """The registered models a predict token may be limited to, reached through the token's own
    relation: accounts sits below registry and imports none of its code."""
    related = ApiToken._meta.get_field("predict_models").related_model
    return related.objects.all()  # type: ignore[union-attr]


def token_list(*, user: Any) -> QuerySet[ApiToken]:
    """A user's own tokens, newest first."""
    return ApiToken.objects.filter(user=user).prefetch_related("predict_models").order_by("-id")


def token_get(*, user: Any, token_id: int) -> ApiToken:
    """One of the user's own tokens; raises NotFoundError for anyone else's (a 404, not a 403:
    nobody learns which ids exist)."""
    token = token_list(user=user).filter(pk=token_id).first()
    if token is None:
        raise NotFoundError(f"You have no token {token_id}.")
    return token


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a checked token lets a request do, small enough to keep in a per-process cache
    keyed by the key's digest (never by the key)."""

    token: ApiToken
    user: Any
    # Seconds since the epoch; infinity for a token without expiry.
    expires_at: float
    # The model names of a predict-scoped token; None for a full token.
    predict_models: frozenset[str] | None


def token_grant(*, digest: str) -> TokenGrant | None:
    """The token whose key hashes to `digest`, with its owner and scope: one indexed query (two
    for a scoped token). None when no token has that digest."""
    token = ApiToken.objects.select_related("user").filter(digest=digest).first()
    if token is None:
        return None
    models = None
    if token.scope == ApiToken.Scope.PREDICT:
        models = frozenset(token.predict_models.values_list("name", flat=True))
    expires_at = token.expiry.timestamp() if token.expiry is not None else math.inf
    return TokenGrant(token=token, user=token.user, expires_at=expires_at, predict_models=models)
