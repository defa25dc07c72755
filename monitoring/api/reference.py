"""`/api/v1/models/{name}/versions/{n}/reference`: a version's reference profile. Reading it
needs the model's data (its team, a grant, or a superuser); setting it needs change rights on
the model in its team."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlplatform.errors import ApplicationError, NotFoundError
from monitoring import reference
from monitoring.models import ReferenceProfile
from registry import selectors as registry_selectors
from registry.models import ModelVersion, RegisteredModel
from tenancy.api import TeamPermissions
from tenancy.services import read_check

_CHANGE = "%(app_label)s.change_%(model_name)s"


class _ChangeModelPermissions(TeamPermissions):
    """Setting a reference changes what the model's traffic is judged by: `change` on the
    model, in its team."""

    perms_map = {**DjangoModelPermissions.perms_map, "POST": [_CHANGE]}


def reference_body(version: ModelVersion, found: ReferenceProfile) -> dict[str, Any]:
    """The profile summary: per input column and output, its kind, null rate, min/max (numeric)
    and bins, or category shares (text)."""
    return {
        "model": version.model.name,
        "version": version.version,
        "source": found.source,
        "rows": found.rows,
        "sample_rows": _sample_rows(found),
        "columns": found.profile.get("columns", {}),
        "outputs": found.profile.get("outputs", {}),
        "created_by": found.created_by.username if found.created_by else None,
        "updated_at": found.updated_at,
    }


def _sample_rows(found: ReferenceProfile) -> int:
    return min(found.rows, reference.SAMPLE_ROWS) if found.sample.name else 0


class ReferenceApi(APIView):
    permission_classes = [_ChangeModelPermissions]
    queryset = RegisteredModel.objects.none()  # whose permissions writes need
    object_permissions = {"POST": "registry.change_registeredmodel"}
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()
        target_column = serializers.CharField(max_length=200, required=False, allow_blank=True)

    def _version(self, request: Request, name: str, version: int) -> ModelVersion:
        model = registry_selectors.model_get(name=name)
        read_check(user=request.user, obj=model)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            self.check_object_permissions(request, model)
        return registry_selectors.version_get(model=model, version=version)

    @extend_schema(tags=["monitoring"], responses={200: {"type": "object"}})
    def get(self, request: Request, name: str, version: int) -> Response:
        """The version's reference profile (404 when it has none yet)."""
        found_version = self._version(request, name, version)
        found = reference.reference_profile(found_version)
        if found is None:
            raise NotFoundError(f"{name} v{version} has no reference profile yet.")
        return Response(reference_body(found_version, found))

    @extend_schema(
        tags=["monitoring"],
        request={"multipart/form-data": InputSerializer},
        responses={201: {"type": "object"}},
    )
    def post(self, request: Request, name: str, version: int) -> Response:
        """Set the version's reference from a CSV or Parquet file of input rows (`file`),
        optionally holding the target in `target_column` → 201 with the profile summary."""
        found_version = self._version(request, name, version)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        if upload.size > settings.MLPLATFORM_MAX_UPLOAD_BYTES:
            raise ApplicationError(
                f"file: {upload.size} bytes exceed the limit of "
                f"{settings.MLPLATFORM_MAX_UPLOAD_BYTES} (MLPLATFORM_MAX_UPLOAD_BYTES).",
                extra={"field": "file"},
                status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        found = reference.reference_upload(
            version=found_version,
            stream=upload,
            target_column=serializer.validated_data.get("target_column", ""),
            user=request.user,
        )
        return Response(reference_body(found_version, found), status=status.HTTP_201_CREATED)
