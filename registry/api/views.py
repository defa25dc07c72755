"""Registry API: one thin view per operation; rules live in services, reads in selectors."""

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlplatform.api import JSONParser, Pagination
from mlplatform.errors import ApplicationError
from registry import selectors, services
from registry.api.serializers import (
    AliasChangeOutputSerializer,
    AliasInputSerializer,
    AliasOutputSerializer,
    AliasSetOutputSerializer,
    ModelInputSerializer,
    ModelOutputSerializer,
    ModelUpdateSerializer,
    VersionInputSerializer,
    VersionOutputSerializer,
    VersionUpdateSerializer,
)
from registry.models import ModelAlias, ModelVersion, RegisteredModel
from tenancy.api import TeamPermissions
from tenancy.services import owner_assign_check, owner_for_create, owner_resolve

TAGS = ["registry"]


class ModelListApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = RegisteredModel.objects.none()  # whose permissions writes need

    @extend_schema(
        tags=TAGS,
        parameters=[
            OpenApiParameter("q", str, description="Search in name and description."),
            OpenApiParameter("tag", str, description="A tag key, or key:value."),
        ],
        responses=ModelOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        """List registered models."""
        models = selectors.model_list(
            q=request.query_params.get("q", ""), tag=request.query_params.get("tag", "")
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(models, request, view=self)
        return paginator.get_paginated_response(ModelOutputSerializer(page, many=True).data)

    @extend_schema(tags=TAGS, request=ModelInputSerializer, responses={201: ModelOutputSerializer})
    def post(self, request: Request) -> Response:
        """Register a model name, owned by the team named (one of the user's) or else the
        user's first team."""
        serializer = ModelInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        owner = owner_for_create(user=request.user, owner=data.get("owner"))
        model = services.model_create(
            name=data["name"],
            description=data.get("description", ""),
            tags=data.get("tags"),
            owner=owner,
            user=request.user,
        )
        return Response(ModelOutputSerializer(model).data, status=status.HTTP_201_CREATED)


class ModelDetailApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = RegisteredModel.objects.none()  # whose permissions writes need

    @extend_schema(tags=TAGS, responses=ModelOutputSerializer)
    def get(self, request: Request, name: str) -> Response:
        return Response(ModelOutputSerializer(selectors.model_get(name=name)).data)

    @extend_schema(tags=TAGS, request=ModelUpdateSerializer, responses=ModelOutputSerializer)
    def patch(self, request: Request, name: str) -> Response:
        """Change description, tags or owner (owner team or superuser)."""
        model = selectors.model_get(name=name)
        self.check_object_permissions(request, model)
        serializer = ModelUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        owner = None
        if "owner" in data:
            owner = owner_resolve(data["owner"])
            owner_assign_check(user=request.user, owner=owner)
        model = services.model_update(
            model=model,
            description=data.get("description"),
            tags=data.get("tags"),
            owner=owner,
            clear_owner="owner" in data and not data["owner"],
        )
        return Response(ModelOutputSerializer(model).data)

    @extend_schema(tags=TAGS, responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        """Delete the model with all its versions (owner team or superuser)."""
        model = selectors.model_get(name=name)
        self.check_object_permissions(request, model)
        services.model_delete(model=model)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionListApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = ModelVersion.objects.none()  # whose permissions writes need
    object_permissions = {"POST": "registry.add_modelversion"}  # on the model
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(tags=TAGS, responses=VersionOutputSerializer(many=True))
    def get(self, request: Request, name: str) -> Response:
        versions = selectors.version_list(model=selectors.model_get(name=name))
        paginator = Pagination()
        page = paginator.paginate_queryset(versions, request, view=self)
        return paginator.get_paginated_response(VersionOutputSerializer(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        request={"multipart/form-data": VersionInputSerializer},
        responses={201: VersionOutputSerializer},
        description=(
            "Upload a .skops, .joblib, .pkl or .pickle artifact as the next version. It starts "
            "`pending`; a worker scans it, loads it in a sandbox and marks it `ready` or "
            "`rejected` (see `status_message`)."
        ),
    )
    def post(self, request: Request, name: str) -> Response:
        model = selectors.model_get(name=name)
        self.check_object_permissions(request, model)
        # Refuse an oversized body from its header, before Django spools it to disk.
        limit = int(settings.MLPLATFORM_MAX_ARTIFACT_BYTES) + 1024 * 1024
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > limit:
            raise ApplicationError(
                f"artifact: the request is larger than {limit} bytes "
                "(MLPLATFORM_MAX_ARTIFACT_BYTES).",
                status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        serializer = VersionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = services.version_upload(
            model=model,
            file=data["artifact"],
            user=request.user,
            description=data.get("description", ""),
            metrics=data.get("metrics"),
            tags=data.get("tags"),
            input_example=data.get("input_example"),
        )
        version = selectors.version_get(model=model, version=version.version)
        return Response(VersionOutputSerializer(version).data, status=status.HTTP_201_CREATED)


class VersionDetailApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = ModelVersion.objects.none()  # whose permissions writes need
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(tags=TAGS, responses=VersionOutputSerializer)
    def get(self, request: Request, name: str, version: int) -> Response:
        model = selectors.model_get(name=name)
        return Response(
            VersionOutputSerializer(selectors.version_get(model=model, version=version)).data
        )

    @extend_schema(tags=TAGS, request=VersionUpdateSerializer, responses=VersionOutputSerializer)
    def patch(self, request: Request, name: str, version: int) -> Response:
        """Change a version's description, metrics or tags; the artifact never changes."""
        model = selectors.model_get(name=name)
        found = selectors.version_get(model=model, version=version)
        self.check_object_permissions(request, found)
        serializer = VersionUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.version_update(version=found, **serializer.validated_data)
        return Response(
            VersionOutputSerializer(selectors.version_get(model=model, version=version)).data
        )


class VersionArtifactApi(APIView):
    @extend_schema(
        tags=TAGS,
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                description="The artifact; its sha256 is in the X-Artifact-SHA256 header."
            )
        },
    )
    def get(self, request: Request, name: str, version: int) -> FileResponse:
        # A rejected version's file is the refused file: never handed out (409).
        found = selectors.artifact_version_get(
            model=selectors.model_get(name=name), version=version
        )
        response = FileResponse(
            found.artifact.open("rb"),
            as_attachment=True,
            filename=f"{name}-v{version}.{found.format}",
            content_type="application/octet-stream",
        )
        response["X-Artifact-SHA256"] = found.sha256
        response["Digest"] = f"sha-256={found.sha256}"
        return response


class AliasListApi(APIView):
    @extend_schema(tags=TAGS, responses=AliasOutputSerializer(many=True))
    def get(self, request: Request, name: str) -> Response:
        aliases = selectors.alias_list(model=selectors.model_get(name=name))
        paginator = Pagination()
        page = paginator.paginate_queryset(aliases, request, view=self)
        return paginator.get_paginated_response(AliasOutputSerializer(page, many=True).data)


class AliasDetailApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = ModelAlias.objects.none()  # whose permissions writes need
    # Checked on the model: its team moves its aliases.
    object_permissions = {
        "PUT": "registry.change_modelalias",
        "DELETE": "registry.delete_modelalias",
    }

    @extend_schema(tags=TAGS, request=AliasInputSerializer, responses=AliasSetOutputSerializer)
    def put(self, request: Request, name: str, alias: str) -> Response:
        """Point the alias at a ready version (owner team or superuser)."""
        model = selectors.model_get(name=name)
        self.check_object_permissions(request, model)
        serializer = AliasInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.alias_set(
            model=model,
            alias=alias,
            version_number=serializer.validated_data["version"],
            user=request.user,
        )
        return Response({"alias": result.alias, "version": result.version.version})

    @extend_schema(tags=TAGS, responses={204: None})
    def delete(self, request: Request, name: str, alias: str) -> Response:
        model = selectors.model_get(name=name)
        self.check_object_permissions(request, model)
        services.alias_delete(model=model, alias=alias, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AliasHistoryApi(APIView):
    @extend_schema(tags=TAGS, responses=AliasChangeOutputSerializer(many=True))
    def get(self, request: Request, name: str) -> Response:
        changes = selectors.alias_history(model=selectors.model_get(name=name), limit=500)
        return Response(AliasChangeOutputSerializer(changes, many=True).data)
