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
    ModelInputSerializer,
    ModelOutputSerializer,
    ModelUpdateSerializer,
    VersionInputSerializer,
    VersionOutputSerializer,
    VersionUpdateSerializer,
)
from registry.models import ModelAlias, ModelVersion, RegisteredModel
from registry.traffic import TrafficPolicy
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
        """Change description, tags, owner or log sample rate (owner team or superuser)."""
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
            log_sample_rate=data.get("log_sample_rate"),
            reset_log_sample_rate="log_sample_rate" in data and data["log_sample_rate"] is None,
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


def _alias_answer(link: ModelAlias, *, policy_sent: bool) -> Response:
    """`{"alias", "version"}` (DESIGN §11), with the traffic policy when one was sent or the
    alias has one."""
    if policy_sent or not services.alias_policy(link).empty:
        return Response(AliasOutputSerializer(link).data)
    return Response({"alias": link.alias, "version": link.version.version})


class AliasDetailApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = ModelAlias.objects.none()  # whose permissions writes need
    # Checked on the model: its team moves its aliases.
    object_permissions = {
        "PUT": "registry.change_modelalias",
        "DELETE": "registry.delete_modelalias",
    }

    @extend_schema(tags=TAGS, responses=AliasOutputSerializer)
    def get(self, request: Request, name: str, alias: str) -> Response:
        """The alias, its version and its traffic policy."""
        return Response(AliasOutputSerializer(selectors.alias_get(name=name, alias=alias)).data)

    @extend_schema(tags=TAGS, request=AliasInputSerializer, responses=AliasOutputSerializer)
    def put(self, request: Request, name: str, alias: str) -> Response:
        """Point the alias at a ready version (owner team or superuser), with a traffic policy
        when the body has `canary`, `shadows` or `bounds` (the whole policy is replaced; without
        them it stays). Moving `production` passes the model's promotion gate (409 with the
        failed rules) unless `override_reason` is given by a user allowed to override."""
        model = selectors.model_get(name=name)
        self.check_object_permissions(request, model)
        serializer = AliasInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        policy = None
        if {"canary", "shadows", "bounds"} & set(request.data):
            policy = TrafficPolicy.parse(
                {key: request.data.get(key) for key in ("canary", "shadows", "bounds")}
            )
        services.alias_set(
            model=model,
            alias=alias,
            version_number=data["version"],
            user=request.user,
            policy=policy,
            reason=data.get("override_reason", ""),
        )
        return _alias_answer(
            selectors.alias_get(name=name, alias=alias), policy_sent=policy is not None
        )

    @extend_schema(tags=TAGS, responses={204: None})
    def delete(self, request: Request, name: str, alias: str) -> Response:
        model = selectors.model_get(name=name)
        self.check_object_permissions(request, model)
        services.alias_delete(model=model, alias=alias, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AliasRollbackApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = ModelAlias.objects.none()
    object_permissions = {"POST": "registry.change_modelalias"}

    @extend_schema(tags=TAGS, request=None, responses=AliasOutputSerializer)
    def post(self, request: Request, name: str, alias: str) -> Response:
        """Return the alias to the version it pointed at before its last move (from the audit
        trail), ending any canary."""
        model = selectors.model_get(name=name)
        self.check_object_permissions(request, model)
        services.alias_rollback(model=model, alias=alias, user=request.user)
        return _alias_answer(selectors.alias_get(name=name, alias=alias), policy_sent=False)


class AliasHistoryApi(APIView):
    @extend_schema(tags=TAGS, responses=AliasChangeOutputSerializer(many=True))
    def get(self, request: Request, name: str) -> Response:
        changes = selectors.alias_history(model=selectors.model_get(name=name), limit=500)
        return Response(AliasChangeOutputSerializer(changes, many=True).data)
