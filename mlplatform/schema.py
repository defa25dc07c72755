"""OpenAPI schema generation tweaks (kept apart from mlplatform.api, which DRF settings name)."""

from typing import Any, Literal

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from mlplatform.api import BearerOrTokenAuthentication, CachedTokenAuthentication


class AutoSchema(SpectacularAutoSchema):
    """Names nested `Input`/`Output` serializers after their view (`EntityListApiInput`)."""

    def get_serializer_name(
        self, serializer: Any, direction: Literal["request", "response"]
    ) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname:
            return qualname.replace(".", "")
        return super().get_serializer_name(serializer, direction)


class TokenScheme(OpenApiAuthenticationExtension):
    """The API token header every route but health takes (accounts.ApiToken keys)."""

    target_class = BearerOrTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                'API token: "Token <key>" or "Bearer <key>". Create one on the Tokens page '
                "(/accounts/tokens/), with POST /api/v1/tokens/ or `manage.py api_token`."
            ),
        }


class CachedTokenScheme(OpenApiAuthenticationExtension):
    """`CachedTokenAuthentication` takes the same header as the other routes' token auth; OpenAPI
    needs it under a name of its own (one component name per authentication class)."""

    target_class = CachedTokenAuthentication
    name = "cachedTokenAuth"
    priority = 1

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'Token-based authentication: "Token <key>" or "Bearer <key>".',
        }
