"""OpenAPI schema generation tweaks (kept apart from mlplatform.api, which DRF settings name)."""

from typing import Any, Literal

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import get_doc
from drf_spectacular.utils import set_override

from mlplatform.api import BearerOrTokenAuthentication, CachedTokenAuthentication


class AutoSchema(SpectacularAutoSchema):
    """Names nested `Input`/`Output` serializers after their view (`EntityListApiInput`), and
    describes an operation only by what is written for its users."""

    def get_serializer_name(
        self, serializer: Any, direction: Literal["request", "response"]
    ) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname:
            return qualname.replace(".", "")
        return super().get_serializer_name(serializer, direction)

    def get_description(self) -> str:  # type: ignore[override]
        """The handler method's docstring, never the view class's: a class docstring is written
        for maintainers (how the view works), a handler's says what the operation does.
        `extend_schema(description=...)` overrides this method, so an explicit description
        always wins."""
        handler = getattr(self.view, getattr(self.view, "action", None) or self.method.lower())
        return str(get_doc(handler)) if handler is not None else ""


# One token scheme for every route, whichever token authentication class the view uses (the
# cached one on the hot paths takes the same header and the same keys): Swagger's Authorize then
# asks for the token once and sends it everywhere.

TOKEN_DEFINITION = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": (
        'API token: "Token <key>" or "Bearer <key>". Create one on the Tokens page '
        "(/accounts/tokens/), with POST /api/v1/tokens/ or `manage.py api_token`."
    ),
}


class TokenScheme(OpenApiAuthenticationExtension):
    """The API token header every route but health takes (accounts.ApiToken keys)."""

    target_class = BearerOrTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return TOKEN_DEFINITION


class CachedTokenScheme(TokenScheme):
    """`CachedTokenAuthentication` (predictions, online reads): the same header and keys, so the
    same scheme (`tokenAuth`)."""

    target_class = CachedTokenAuthentication
    priority = 1


# Both classes define the one `tokenAuth` component, with the same definition: not a collision.
set_override(CachedTokenAuthentication, "suppress_collision_warning", True)
