"""Feature store API: one thin view per operation; the services hold the rules."""

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from features import online, selectors, services, training_sets
from features.api.serializers import (
    EntityOutput,
    FeatureOutput,
    GroupOutput,
    ServiceOutput,
    SourceOutput,
)
from features.models import DataSource, Entity, Feature, FeatureGroup, FeatureService
from mlplatform.api import CachedTokenAuthentication, JSONParser, Pagination
from mlplatform.errors import ApplicationError
from tenancy.api import TeamChangePermissions, TeamPermissions
from tenancy.services import (
    owner_assign_check,
    owner_for_create,
    owner_resolve,
    read_check,
    read_check_cached,
    write_check,
)


def _paginate(view: APIView, request: Request, queryset: Any, output: Any) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(output(page, many=True).data)


def _source(name: str | None, request: Request) -> DataSource | None:
    """A data source the user may build on: a group reads all of its source's data."""
    if not name:
        return None
    source = DataSource.objects.filter(name=name).first()
    if source is None:
        raise ApplicationError(f"source: unknown data source {name!r}.")
    write_check(user=request.user, perm="features.use_datasource", obj=source)
    return source


def _sources(names: list[str] | None, request: Request) -> list[DataSource] | None:
    if names is None:
        return None
    return [s for s in (_source(n, request) for n in names) if s is not None]


# --- entities ---------------------------------------------------------------------------------


class EntityListApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = Entity.objects.none()  # whose permissions writes need

    class Input(serializers.Serializer):
        name = serializers.SlugField(max_length=100)
        join_keys = serializers.ListField(child=serializers.CharField(), allow_empty=False)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(responses=EntityOutput(many=True))
    def get(self, request: Request) -> Response:
        return _paginate(self, request, Entity.objects.all(), EntityOutput)

    @extend_schema(request=Input, responses={201: EntityOutput})
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        owner = owner_for_create(user=request.user)
        entity = services.entity_create(**data.validated_data, owner=owner)
        return Response(EntityOutput(entity).data, status=status.HTTP_201_CREATED)


class EntityDetailApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = Entity.objects.none()  # whose permissions writes need

    class Input(serializers.Serializer):
        description = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(responses=EntityOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(EntityOutput(selectors.entity_get(name=name)).data)

    @extend_schema(request=Input, responses=EntityOutput)
    def patch(self, request: Request, name: str) -> Response:
        entity = selectors.entity_get(name=name)
        self.check_object_permissions(request, entity)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        entity = services.entity_update(entity=entity, **data.validated_data)
        return Response(EntityOutput(entity).data)


# --- sources ----------------------------------------------------------------------------------


class SourceListApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = DataSource.objects.none()  # whose permissions writes need
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    class Input(serializers.Serializer):
        name = serializers.SlugField(max_length=100)
        kind = serializers.ChoiceField(choices=DataSource.Kind.choices, default="file")
        file = serializers.FileField(required=False)
        path = serializers.CharField(required=False, allow_blank=True, default="")
        description = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(responses=SourceOutput(many=True))
    def get(self, request: Request) -> Response:
        return _paginate(self, request, DataSource.objects.all(), SourceOutput)

    @extend_schema(request={"multipart/form-data": Input}, responses={201: SourceOutput})
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        owner = owner_for_create(user=request.user)
        source = services.source_create(**data.validated_data, owner=owner)
        return Response(SourceOutput(source).data, status=status.HTTP_201_CREATED)


class SourceDetailApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = DataSource.objects.none()  # whose permissions writes need

    @extend_schema(responses=SourceOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(SourceOutput(selectors.source_get(name=name)).data)


# --- groups -----------------------------------------------------------------------------------


class GroupListApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = FeatureGroup.objects.none()  # whose permissions writes need

    class Input(serializers.Serializer):
        name = serializers.SlugField(max_length=100)
        entity = serializers.SlugField()
        features = serializers.ListField(child=serializers.DictField(), allow_empty=True)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        ttl_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=1)
        availability = serializers.JSONField(required=False, allow_null=True)
        naive_timestamps_utc = serializers.BooleanField(required=False, default=False)
        tags = serializers.DictField(required=False, default=dict)
        tasks = serializers.ListField(child=serializers.CharField(), required=False, default=list)
        owner = serializers.CharField(required=False, allow_null=True, allow_blank=True)
        source = serializers.CharField(  # type: ignore[assignment]
            required=False, allow_null=True, allow_blank=True
        )
        transformation_sql = serializers.CharField(required=False, allow_blank=True, default="")
        transformation_sources = serializers.ListField(
            child=serializers.CharField(), required=False, default=list
        )
        schedule = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(responses=GroupOutput(many=True))
    def get(self, request: Request) -> Response:
        groups = FeatureGroup.objects.select_related("entity", "owner", "source").prefetch_related(
            "features", "transformation_sources"
        )
        return _paginate(self, request, groups, GroupOutput)

    @extend_schema(request=Input, responses={201: GroupOutput})
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["entity"] = selectors.entity_get(name=values["entity"])
        # A group belongs to a team: the one named (the user's), else the creator's first.
        values["owner"] = owner_for_create(user=request.user, owner=values.get("owner"))
        values["source"] = _source(values.get("source"), request)
        values["transformation_sources"] = (
            _sources(values.get("transformation_sources"), request) or []
        )
        group = services.group_create(**values)
        return Response(GroupOutput(group).data, status=status.HTTP_201_CREATED)


class GroupDetailApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = FeatureGroup.objects.none()  # whose permissions writes need

    class Input(serializers.Serializer):
        description = serializers.CharField(required=False, allow_blank=True)
        ttl_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=1)
        availability = serializers.JSONField(required=False, allow_null=True)
        naive_timestamps_utc = serializers.BooleanField(required=False)
        tags = serializers.DictField(required=False)
        tasks = serializers.ListField(child=serializers.CharField(), required=False)
        owner = serializers.CharField(required=False, allow_null=True, allow_blank=True)
        source = serializers.CharField(  # type: ignore[assignment]
            required=False, allow_null=True, allow_blank=True
        )
        transformation_sql = serializers.CharField(required=False, allow_blank=True)
        transformation_sources = serializers.ListField(
            child=serializers.CharField(), required=False
        )
        schedule = serializers.CharField(required=False, allow_blank=True)
        add_features = serializers.ListField(child=serializers.DictField(), required=False)

    @extend_schema(responses=GroupOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(GroupOutput(selectors.group_get(name=name)).data)

    @extend_schema(request=Input, responses=GroupOutput)
    def patch(self, request: Request, name: str) -> Response:
        group = selectors.group_get(name=name)
        self.check_object_permissions(request, group)
        data = self.Input(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "owner" in values:
            values["owner"] = owner_resolve(values["owner"])
            owner_assign_check(user=request.user, owner=values["owner"])
        if "source" in values:
            values["source"] = _source(values["source"], request)
        if "transformation_sources" in values:
            values["transformation_sources"] = _sources(values["transformation_sources"], request)
        group = services.group_update(group=group, **values)
        return Response(GroupOutput(group).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        group = selectors.group_get(name=name)
        self.check_object_permissions(request, group)
        services.group_delete(group=group)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GroupIngestApi(APIView):
    permission_classes = [TeamChangePermissions]
    queryset = FeatureGroup.objects.none()  # whose permissions writes need
    parser_classes = [MultiPartParser, FormParser]

    class Input(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True)

    @extend_schema(
        request={"multipart/form-data": Input},
        responses={201: {"type": "object"}, 202: {"type": "object"}},
    )
    def post(self, request: Request, name: str) -> Response:
        group = selectors.group_get(name=name)
        self.check_object_permissions(request, group)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        rows, job = services.ingestion_start(
            group=group, file=upload, size=upload.size or 0, user=request.user
        )
        if job is not None:
            return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)
        return Response({"rows": rows}, status=status.HTTP_201_CREATED)


class GroupRunApi(APIView):
    permission_classes = [TeamChangePermissions]
    queryset = FeatureGroup.objects.none()  # whose permissions writes need

    @extend_schema(request=None, responses={202: {"type": "object"}})
    def post(self, request: Request, name: str) -> Response:
        group = selectors.group_get(name=name)
        self.check_object_permissions(request, group)
        job = services.transformation_start(group=group, user=request.user)
        return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)


class GroupMaterializeApi(APIView):
    permission_classes = [TeamChangePermissions]
    queryset = FeatureGroup.objects.none()  # whose permissions writes need

    @extend_schema(request=None, responses={202: {"type": "object"}})
    def post(self, request: Request, name: str) -> Response:
        group = selectors.group_get(name=name)
        self.check_object_permissions(request, group)
        job = services.materialisation_start(group=group, user=request.user)
        return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)


# --- features and services --------------------------------------------------------------------


class FeatureListApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = Feature.objects.none()  # whose permissions writes need

    @extend_schema(
        parameters=[
            OpenApiParameter(p, str) for p in ("q", "entity", "task", "tag", "owner", "group")
        ],
        responses=FeatureOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        features = selectors.feature_search(
            q=params.get("q"),
            entity=params.get("entity"),
            task=params.get("task"),
            tag=params.get("tag"),
            owner=params.get("owner"),
            group=params.get("group"),
        )
        return _paginate(self, request, features, FeatureOutput)


class FeatureDetailApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = Feature.objects.none()  # whose permissions writes need

    class Input(serializers.Serializer):
        description = serializers.CharField(required=False, allow_blank=True)
        tags = serializers.DictField(required=False)

    @extend_schema(responses=FeatureOutput)
    def get(self, request: Request, group: str, name: str) -> Response:
        return Response(FeatureOutput(selectors.feature_get(group=group, name=name)).data)

    @extend_schema(request=Input, responses=FeatureOutput)
    def patch(self, request: Request, group: str, name: str) -> Response:
        feature = selectors.feature_get(group=group, name=name)
        self.check_object_permissions(request, feature)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        feature = services.feature_update(feature=feature, **data.validated_data)
        return Response(FeatureOutput(feature).data)


class ServiceListApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = FeatureService.objects.none()  # whose permissions writes need

    class Input(serializers.Serializer):
        name = serializers.SlugField(max_length=100)
        features = serializers.ListField(child=serializers.CharField(), allow_empty=False)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        owner = serializers.CharField(required=False, allow_null=True, allow_blank=True)

    @extend_schema(responses=ServiceOutput(many=True))
    def get(self, request: Request) -> Response:
        return _paginate(self, request, FeatureService.objects.all(), ServiceOutput)

    @extend_schema(request=Input, responses={201: ServiceOutput})
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["owner"] = owner_for_create(user=request.user, owner=values.get("owner"))
        service = services.service_create(**values, user=request.user)
        return Response(ServiceOutput(service).data, status=status.HTTP_201_CREATED)


class ServiceDetailApi(APIView):
    permission_classes = [TeamPermissions]
    queryset = FeatureService.objects.none()  # whose permissions writes need

    class Input(serializers.Serializer):
        features = serializers.ListField(child=serializers.CharField(), required=False)
        description = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(responses=ServiceOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(ServiceOutput(selectors.service_get(name=name)).data)

    @extend_schema(request=Input, responses=ServiceOutput)
    def patch(self, request: Request, name: str) -> Response:
        service = selectors.service_get(name=name)
        self.check_object_permissions(request, service)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        service = services.service_update(service=service, **data.validated_data)
        return Response(ServiceOutput(service).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        service = selectors.service_get(name=name)
        self.check_object_permissions(request, service)
        services.service_delete(service=service)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- retrieval --------------------------------------------------------------------------------


def _feature_refs(value: Any) -> list[str] | None:
    """`features` as a JSON list or a comma-separated form field."""
    if value in (None, "", []):
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ApplicationError("features: a list of 'group:feature' references is required.")


@extend_schema_field(
    {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]}
)
class FeatureRefsField(serializers.Field):
    """A JSON list of references, or one comma-separated form field."""

    def to_internal_value(self, data: Any) -> list[str] | None:
        return _feature_refs(data)

    def to_representation(self, value: Any) -> Any:
        return value


class TrainingSetApi(APIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    class Input(serializers.Serializer):
        features = FeatureRefsField(required=False)
        feature_service = serializers.CharField(required=False, allow_blank=True)
        entities = serializers.ListField(child=serializers.DictField(), required=False)
        entity_file = serializers.FileField(required=False)
        format = serializers.ChoiceField(choices=["parquet", "csv"], default="parquet")
        full_names = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        request={"application/json": Input, "multipart/form-data": Input},
        responses={(200, "application/octet-stream"): bytes, 202: {"type": "object"}},
    )
    def post(self, request: Request) -> Response | HttpResponse:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if ("entities" in values) == ("entity_file" in values):
            raise ApplicationError("Give exactly one of `entities` and `entity_file`.")
        features = online.features_resolve(
            refs=values.get("features"),
            feature_service=values.get("feature_service") or None,
        )
        # A training set holds feature values: each group's team, or a grant from it.
        for group in {feature.group for feature in features}:
            read_check(user=request.user, obj=group)
        fmt = values["format"]
        content, job = services.training_set_request(
            features=features,
            fmt=fmt,
            full_names=values["full_names"],
            rows=values.get("entities"),
            entity_file=values.get("entity_file"),
            user=request.user,
        )
        if job is not None:
            return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)
        response = HttpResponse(content, content_type=training_sets.CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="training-set.{fmt}"'
        return response


def _plain_text(value: Any) -> bool:
    """A string a CharField keeps as it is: ASCII (so no surrogates), no NUL, nothing to strip."""
    return (
        type(value) is str
        and value.isascii()
        and "\x00" not in value
        and value != ""
        and value.strip() == value
    )


def _online_input_plain(data: Any) -> dict[str, Any] | None:
    """OnlineApi.Input's validated data for a body it accepts unchanged, else None."""
    if type(data) is not dict:
        return None
    entities = data.get("entities")
    if type(entities) is not dict or not all(type(v) is list for v in entities.values()):
        return None
    values: dict[str, Any] = {"entities": {k: list(v) for k, v in entities.items()}}
    if "features" in data:
        features = data["features"]
        if type(features) is not list or not all(_plain_text(f) for f in features):
            return None
        values["features"] = list(features)
    if "feature_service" in data:
        if not _plain_text(data["feature_service"]):
            return None
        values["feature_service"] = data["feature_service"]
    return values


class OnlineApi(APIView):
    # Online reads sit on the inference hot path: the same cached token check as predictions.
    authentication_classes = [CachedTokenAuthentication, SessionAuthentication]

    class Input(serializers.Serializer):
        features = serializers.ListField(child=serializers.CharField(), required=False)
        feature_service = serializers.CharField(required=False)
        entities = serializers.DictField(child=serializers.ListField())

    def _input(self, data: Any) -> dict[str, Any]:
        """The body as Input validates it. The usual shape is checked by hand (building the
        serializer costs more than the rest of the view); anything else goes through Input,
        which words the errors."""
        values = _online_input_plain(data)
        if values is not None:
            return values
        serializer = self.Input(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(request=Input, responses={200: {"type": "object"}})
    def post(self, request: Request) -> Response:
        values = self._input(request.data)
        features = online.features_resolve_cached(
            refs=values.get("features"), feature_service=values.get("feature_service")
        )
        columns = values["entities"]
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise ApplicationError("entities: every key needs a non-empty list of the same length.")
        count = lengths.pop()
        entity_rows = [{k: v[i] for k, v in columns.items()} for i in range(count)]
        read_check_cached(user=request.user, objs={feature.group for feature in features})
        rows, statuses = online.online_read(features=features, entity_rows=entity_rows)
        return Response(
            {
                "rows": [{**entity, **row} for entity, row in zip(entity_rows, rows, strict=True)],
                "status": statuses,
            }
        )
