"""OpenAPI schema generation tweaks (kept apart from mlplatform.api, which DRF settings name)."""

from typing import Any, Literal

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """Names nested `Input`/`Output` serializers after their view (`EntityListApiInput`)."""

    def get_serializer_name(
        self, serializer: Any, direction: Literal["request", "response"]
    ) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname:
            return qualname.replace(".", "")
        return super().get_serializer_name(serializer, direction)
