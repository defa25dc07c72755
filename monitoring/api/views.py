"""Monitoring API under /api/v1/models/{name}/: feedback, alert rules, the monitoring run and
the monitoring summary. Reads need the model's data (its team, a grant, or a superuser); writes
need change rights on the model in its team."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlplatform.api import JSONParser
from mlplatform.errors import ApplicationError
from monitoring import run, selectors, services
from monitoring.api.serializers import (
    AlertRuleInputSerializer,
    AlertRuleSerializer,
    FeedbackItemSerializer,
    FeedbackResultSerializer,
    FeedbackUploadSerializer,
    monitoring_data,
)
from registry import selectors as registry_selectors
from registry.models import RegisteredModel
from tenancy.api import TeamPermissions
from tenancy.services import read_check

TAGS = ["monitoring"]
_CHANGE = "%(app_label)s.change_%(model_name)s"
CHANGE_MODEL = "registry.change_registeredmodel"


class ModelWritePermissions(TeamPermissions):
    """Writes here change what the model is judged by: `change` on the model, in its team."""

    perms_map = {**DjangoModelPermissions.perms_map, "POST": [_CHANGE], "PUT": [_CHANGE]}


class _ModelApi(APIView):
    permission_classes = [ModelWritePermissions]
    queryset = RegisteredModel.objects.none()  # whose permissions writes need
    object_permissions = {"POST": CHANGE_MODEL, "PUT": CHANGE_MODEL}

    def model_for(self, request: Request, name: str) -> RegisteredModel:
        """The model, readable by the user (403 otherwise), writable for writes."""
        model = registry_selectors.model_get(name=name)
        read_check(user=request.user, obj=model)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            self.check_object_permissions(request, model)
        return model


class FeedbackApi(_ModelApi):
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        tags=TAGS,
        request={
            "application/json": FeedbackItemSerializer(many=True),
            "multipart/form-data": FeedbackUploadSerializer,
        },
        responses={201: FeedbackResultSerializer},
    )
    def post(self, request: Request, name: str) -> Response:
        """Ground truth for logged requests: `{"request_id", "actual"}`, a list of them, or a
        CSV `file` with `request_id` and `actual` columns. A request's feedback sent again
        replaces the earlier one; ids not in the log yet are stored and counted `not_joined`.
        Joined to the request's first row at each monitoring run."""
        model = self.model_for(request, name)
        if request.content_type.startswith("multipart/"):
            upload = request.FILES.get("file")
            if upload is None:
                raise ApplicationError(
                    "file: upload a CSV file with request_id and actual columns.",
                    extra={"field": "file"},
                )
            if upload.size > settings.MLPLATFORM_MAX_UPLOAD_BYTES:
                raise ApplicationError(
                    f"file: {upload.size} bytes exceed the limit of "
                    f"{settings.MLPLATFORM_MAX_UPLOAD_BYTES} (MLPLATFORM_MAX_UPLOAD_BYTES).",
                    extra={"field": "file"},
                    status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                )
            items: list[Any] = services.feedback_rows_from_csv(upload)
        elif isinstance(request.data, list):
            items = request.data
        elif isinstance(request.data, dict) and request.data:
            items = [dict(request.data)]
        else:
            raise ApplicationError(
                'Send {"request_id", "actual"}, a list of them, or a CSV `file`.'
            )
        result = services.feedback_record(model=model, items=items)
        return Response(result.data(), status=status.HTTP_201_CREATED)


class AlertRulesApi(_ModelApi):
    parser_classes = [JSONParser]

    @extend_schema(tags=TAGS, responses=AlertRuleSerializer(many=True))
    def get(self, request: Request, name: str) -> Response:
        """The model's alert rules."""
        model = self.model_for(request, name)
        return Response(AlertRuleSerializer(selectors.rules_of(model=model), many=True).data)

    @extend_schema(
        tags=TAGS,
        request=AlertRuleInputSerializer(many=True),
        responses=AlertRuleSerializer(many=True),
    )
    def put(self, request: Request, name: str) -> Response:
        """Replace the model's rules with the list sent (`metric`, `column` — empty for any —,
        `threshold`, `enabled`). A rule on the same metric and column as before keeps its
        alerts; rules left out are deleted with theirs."""
        model = self.model_for(request, name)
        if not isinstance(request.data, list):
            raise ApplicationError("Send the list of rules (an empty list removes them all).")
        services.rules_replace(model=model, rules=request.data)
        return Response(AlertRuleSerializer(selectors.rules_of(model=model), many=True).data)


class MonitoringRunApi(_ModelApi):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            202: OpenApiResponse(description='`{"job": id}`: follow it at /api/v1/jobs/{id}/.'),
            409: OpenApiResponse(description="A run of the model is already queued or running."),
        },
    )
    def post(self, request: Request, name: str) -> Response:
        """Compute the current hour and day windows, accuracy, skew, freshness and alerts now,
        as a job on a worker."""
        model = self.model_for(request, name)
        job = run.monitoring_request(model=model, user=request.user)
        return Response({"job": job.pk}, status=status.HTTP_202_ACCEPTED)


class MonitoringApi(_ModelApi):
    @extend_schema(tags=TAGS, responses={200: {"type": "object"}})
    def get(self, request: Request, name: str) -> Response:
        """Per version and role: the newest hour and day windows (per input column `psi`, `ks`,
        `js`, `null_rate`, `out_of_range`, `unknown_categories`; per output the same as
        prediction drift; 4xx `rejections` per field; `skew` per feature; `accuracy`), and the
        version's alerts; the model's alerts and rules; the freshness of the feature groups its
        versions read."""
        model = self.model_for(request, name)
        return Response(monitoring_data(model))
