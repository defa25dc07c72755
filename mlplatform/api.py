"""API plumbing shared by every app: auth, pagination, and the one exception handler."""

import threading
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from knox.crypto import hash_token
from rest_framework import exceptions, parsers
from rest_framework.authentication import BaseAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import DjangoModelPermissions
from rest_framework.response import Response

from accounts.selectors import token_grant
from accounts.services import token_used
from mlplatform.errors import ApplicationError

# The views a predict-scoped token may call, for the models it names: the prediction routes of the
# protocols and the readiness and metadata reads their clients make first.
PREDICT_SCOPE_VIEWS = frozenset(
    {
        "serving.api.views.NativePredictApi",
        "serving.api.views.MlflowInvocationsApi",
        "serving.api.views.MlflowPingApi",
        "serving.api.views.MlflowVersionApi",
        "serving.api.views.V2InferApi",
        "serving.api.views.V2ModelReadyApi",
        "serving.api.views.V2ModelMetadataApi",
        "serving.api.views.V2ModelConfigApi",
        "serving.api.views.V2ModelStatsApi",
        "serving.api.views.V1ModelReadyApi",
        "serving.api.views.V1PredictApi",
    }
)


def _scope_allows(request: Any, models: frozenset[str]) -> bool:
    """Whether the resolved route is one a predict-scoped token may call for its `models`. The
    route is read from the request, so the check needs nothing from the view."""
    match = getattr(request, "resolver_match", None)
    view = getattr(match, "func", None)
    view_class = getattr(view, "view_class", None)
    if match is None or view_class is None:
        return False
    qualname = f"{view_class.__module__}.{view_class.__qualname__}"
    return qualname in PREDICT_SCOPE_VIEWS and match.kwargs.get("name") in models


class BearerOrTokenAuthentication(BaseAuthentication):
    """API tokens (accounts.ApiToken, django-rest-knox): `Authorization: Token <key>` or
    `Authorization: Bearer <key>`.

    A key is found by its SHA-512 digest (keys are never stored). An unknown or expired key, or
    an inactive owner, is a 401; a predict-scoped token anywhere but its models' prediction
    routes is a 403. Every check runs on every request, cached or not.
    """

    def authenticate(self, request: Any) -> Any:
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        if not parts or parts[0].lower() not in ("token", "bearer"):
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: expected 'Token <key>' or 'Bearer <key>'."
            )
        grant = self.grant_for(hash_token(parts[1]))
        if grant.expires_at <= time.time():
            raise exceptions.AuthenticationFailed(
                "This token has expired: create a new one on the Tokens page (/accounts/tokens/)."
            )
        if grant.predict_models is not None and not _scope_allows(request, grant.predict_models):
            raise exceptions.PermissionDenied(
                "This token may only predict with the models "
                f"{', '.join(sorted(grant.predict_models)) or '(none left)'}."
            )
        return grant.user, grant.token

    def grant_for(self, digest: str) -> Any:
        """The token with this digest, from the database; 401 for none or an inactive owner."""
        grant = token_grant(digest=digest)
        if grant is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not grant.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        token_used(token=grant.token)
        return grant

    def authenticate_header(self, request: Any) -> str:
        return "Token"


class CachedTokenAuthentication(BearerOrTokenAuthentication):
    """Token auth for the hot paths (predictions, online feature reads), cached per process.

    The token lookup is a database query per request, a third of a one-row prediction, so a
    token is trusted for MLPLATFORM_TOKEN_CACHE_SECONDS after it was last looked up: a revoked
    token or a deactivated user is refused within that bound. The cache is keyed by the key's
    digest, so no key outlives its request; expiry and scope are checked on every hit.
    """

    _MAX_ENTRIES = 10_000
    _cache: dict[str, tuple[float, Any]] = {}
    _lock = threading.Lock()

    def grant_for(self, digest: str) -> Any:
        now = time.monotonic()
        cached = self._cache.get(digest)  # a dict read is atomic; the lock guards the writes
        if cached is not None and cached[0] > now:
            return cached[1]
        grant = super().grant_for(digest)  # raises for unknown, revoked or inactive
        trusted_until = now + float(settings.MLPLATFORM_TOKEN_CACHE_SECONDS)
        with self._lock:
            if len(self._cache) >= self._MAX_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (trusted_until, grant)
        return grant


def token_cache_clear() -> None:
    with CachedTokenAuthentication._lock:
        CachedTokenAuthentication._cache.clear()


class ModelPermissions(DjangoModelPermissions):
    """Reads need a login; writes need the Django permission on the view's `queryset` model
    (POST add, PUT/PATCH change, DELETE delete), granted per user or group in the admin. The
    403 names the missing permission."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if not super().has_permission(request, view):
            if request.user and request.user.is_authenticated:
                model = self._queryset(view).model
                needed = self.get_required_permissions(request.method, model)
                raise exceptions.PermissionDenied(
                    f"This needs the permission {' and '.join(needed)} (ask an admin)."
                )
            return False
        return True


class ChangePermissions(ModelPermissions):
    """For actions on an existing object sent as POST (ingest, run): they need `change`."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "POST": ["%(app_label)s.change_%(model_name)s"],
    }


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation with its most common answer found without parsing the Accept header:
    no `?format=`, an Accept of nothing, `*/*` or `application/json`, and JSON first among the
    view's renderers gives JSON, exactly as the full negotiation would. Anything else (the
    browsable API, a 406) goes through DRF's rules."""

    _COMMON = frozenset({"*/*", "application/json"})

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        if (
            format_suffix is None
            and request.META.get("HTTP_ACCEPT", "*/*") in self._COMMON
            and renderers
            and renderers[0].media_type == "application/json"
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with bodies nested past Python's recursion limit refused as a 400
    (the standard library raises RecursionError for them, which would be a 500)."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(
                "JSON parse error - the body is nested too deeply."
            ) from None


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(item) for item in detail)
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error leaves as JSON with a human `detail`; field errors also under `errors`."""
    if isinstance(exc, ApplicationError):
        body = {"detail": exc.message, **exc.extra}
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        errors = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = exceptions.ValidationError(errors)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)

    # Imported here: rest_framework.views reads the API settings, which name this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": _flatten(exc.detail), "errors": exc.detail}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"])}
    return response
