"""Feast's feature server routes (`POST /get-online-features`, `/push`, `/write-to-online-store`)
on the platform's feature store, so Feast's clients work unchanged. The names and shapes are in
`features/feast.py`; the rules are the platform's: reads need read access to each group, as
`/api/v1/features/online/` does, and writes need change permission on each group, as ingestion
does."""

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from features import feast, ingestion, services
from features.models import FeatureGroup
from mlplatform.api import CachedTokenAuthentication, JSONParser
from tenancy.services import read_check_cached, write_check


# The bodies as named components of the OpenAPI schema (so generated clients get typed models);
# `features.feast` reads and checks the bodies, not these serializers.
def _columns(help_text: str) -> serializers.DictField:
    return serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField()), help_text=help_text
    )


class FeastOnlineFeaturesSerializer(serializers.Serializer):
    entities = _columns("Join key → its values, one per entity row.")
    features = serializers.ListField(
        child=serializers.CharField(), required=False, help_text='"<feature view>:<feature>"'
    )
    feature_service = serializers.CharField(required=False)
    full_feature_names = serializers.BooleanField(required=False, default=False)


class FeastFeatureVectorSerializer(serializers.Serializer):
    values = serializers.ListField(child=serializers.JSONField())
    statuses = serializers.ListField(
        child=serializers.ChoiceField(
            choices=["PRESENT", "NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE"]
        )
    )
    event_timestamps = serializers.ListField(child=serializers.CharField())


class FeastOnlineFeaturesMetadataSerializer(serializers.Serializer):
    feature_names = serializers.ListField(child=serializers.CharField())


class FeastOnlineFeaturesResponseSerializer(serializers.Serializer):
    metadata = FeastOnlineFeaturesMetadataSerializer()
    results = FeastFeatureVectorSerializer(many=True)


class FeastPushSerializer(serializers.Serializer):
    push_source_name = serializers.CharField()
    df = _columns("Column → its values (the join keys, event_timestamp and features).")
    to = serializers.ChoiceField(choices=list(feast.PUSH_MODES), required=False, default="online")


class FeastWriteToOnlineStoreSerializer(serializers.Serializer):
    feature_view_name = serializers.CharField()
    df = _columns("Column → its values (the join keys, event_timestamp and features).")


# Feast's error answer: a JSON string holding {"module", "class", "message"}.
_ERRORS = {code: {"type": "string"} for code in (401, 403, 404, 413, 422)}


class FeastApi(APIView):
    """Token auth as for online reads (Feast's clients send `Authorization: Bearer <key>`);
    every error answers in Feast's error shape, a client error as FastAPI's 422."""

    authentication_classes = [CachedTokenAuthentication, SessionAuthentication]
    parser_classes = [JSONParser]

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if response.status_code == 400:
            response.status_code = 422
        data = response.data
        message = data.get("detail") if isinstance(data, dict) else data
        response.data = feast.error_body(
            status_code=response.status_code,
            message=str(message),
            feast_class=getattr(exc, "feast_class", None),
        )
        return response


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise exceptions.ValidationError("The body must be a JSON object.")
    return request.data


class GetOnlineFeaturesApi(FeastApi):
    @extend_schema(
        tags=["feast"],
        request={"application/json": FeastOnlineFeaturesSerializer},
        responses={200: FeastOnlineFeaturesResponseSerializer, **_ERRORS},
        description="Feast's `get-online-features`: the latest values of features for entities.",
    )
    def post(self, request: Request) -> Response:
        query = feast.online_request(request.data)
        features = feast.features_resolve(query)
        read_check_cached(user=request.user, objs={feature.group for feature in features})
        return Response(feast.online_response(request=query, features=features))


def _push(request: Request, groups: list[FeatureGroup], *, online: bool, offline: bool) -> None:
    """Check every group (permission, then the rows) before writing to any of them."""
    body = _body(request)
    for group in groups:
        write_check(user=request.user, perm="features.change_featuregroup", obj=group)
        # Feast's clients send naive timestamps meaning UTC (feast.utils.make_tzaware).
        group.naive_timestamps_utc = True
    frames = [feast.push_frame(body.get("df"), group=group) for group in groups]
    if len(groups) > 1:
        for group, frame in zip(groups, frames, strict=True):
            ingestion.frame_validate(
                group=group, frame=frame, now=timezone.now(), with_available=False
            )
    for group, frame in zip(groups, frames, strict=True):
        services.feature_push(group=group, frame=frame, online_store=online, offline_store=offline)


class PushApi(FeastApi):
    @extend_schema(
        tags=["feast"],
        request={"application/json": FeastPushSerializer},
        responses={200: None, **_ERRORS},
        description="Feast's `push`: rows of a push source (a feature group) to the online "
        "store, the offline store or both; `available_at` is the push time.",
    )
    def post(self, request: Request) -> Response:
        body = _body(request)
        online, offline = feast.push_mode(body.get("to", "online"))
        groups = feast.push_groups(body.get("push_source_name"))
        _push(request, groups, online=online, offline=offline)
        return Response(status=200)


class WriteToOnlineStoreApi(FeastApi):
    @extend_schema(
        tags=["feast"],
        request={"application/json": FeastWriteToOnlineStoreSerializer},
        responses={200: None, **_ERRORS},
        description="Feast's `write-to-online-store` (what a Feast FeatureStore with a remote "
        "online store sends for `push` and `write_to_online_store`).",
    )
    def post(self, request: Request) -> Response:
        group = feast.view_group(_body(request).get("feature_view_name"))
        _push(request, [group], online=True, offline=False)
        return Response(None)
