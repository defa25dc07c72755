"""Rollout API: evaluation datasets, the promotion gate and evaluations of a model's versions.
Reads need the model's data (its team, a grant, or a superuser); writes need change rights on
the model in its team."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mlplatform.api import JSONParser, Pagination
from mlplatform.errors import ApplicationError, ConflictError
from registry import selectors as registry_selectors
from registry.models import RegisteredModel
from rollout import selectors, services
from rollout.api.serializers import (
    DatasetInputSerializer,
    DatasetOutputSerializer,
    EvaluationOutputSerializer,
    EvaluationRequestSerializer,
    GateInputSerializer,
    GateOutputSerializer,
    verdicts_data,
)
from rollout.models import EvaluationDataset
from tenancy.api import TeamPermissions
from tenancy.services import read_check

TAGS = ["rollout"]
_CHANGE = "%(app_label)s.change_%(model_name)s"
CHANGE_MODEL = "registry.change_registeredmodel"


class ModelWritePermissions(TeamPermissions):
    """Every write here changes what the model is judged by: `change` on the model, in its
    team."""

    perms_map = {**DjangoModelPermissions.perms_map, "POST": [_CHANGE], "PUT": [_CHANGE]}
    perms_map["DELETE"] = [_CHANGE]


class _ModelApi(APIView):
    permission_classes = [ModelWritePermissions]
    queryset = RegisteredModel.objects.none()  # whose permissions writes need
    object_permissions = {"POST": CHANGE_MODEL, "PUT": CHANGE_MODEL, "DELETE": CHANGE_MODEL}

    def model_for(self, request: Request, name: str) -> RegisteredModel:
        """The model, readable by the user (403 otherwise), writable for writes."""
        model = registry_selectors.model_get(name=name)
        read_check(user=request.user, obj=model)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            self.check_object_permissions(request, model)
        return model


class DatasetListApi(_ModelApi):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(tags=TAGS, responses=DatasetOutputSerializer(many=True))
    def get(self, request: Request, name: str) -> Response:
        """The model's evaluation datasets."""
        model = self.model_for(request, name)
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.dataset_list(model=model), request, view=self)
        return paginator.get_paginated_response(DatasetOutputSerializer(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        request={
            "multipart/form-data": DatasetInputSerializer,
            "application/json": DatasetInputSerializer,
        },
        responses={201: DatasetOutputSerializer},
    )
    def post(self, request: Request, name: str) -> Response:
        """A labelled CSV/Parquet upload (`file` + `label_column`), or a point-in-time
        training set of a `feature_service` for an entity file (multipart `file`, or
        `entity_file`: a path in the team's `batch-inputs/<team>/` area). A large training
        set is built as a job: the dataset answers `building` with its `job`."""
        model = self.model_for(request, name)
        serializer = DatasetInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data.get("file")
        if upload is not None and upload.size > settings.MLPLATFORM_MAX_UPLOAD_BYTES:
            raise ApplicationError(
                f"file: {upload.size} bytes exceed the limit of "
                f"{settings.MLPLATFORM_MAX_UPLOAD_BYTES} (MLPLATFORM_MAX_UPLOAD_BYTES).",
                extra={"field": "file"},
                status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        service = (data.get("feature_service") or "").strip()
        if service:
            if upload is not None and data.get("entity_file"):
                raise ApplicationError(
                    "Give the entity file either as `file` or as `entity_file`, not both.",
                    extra={"field": "entity_file"},
                )
            dataset = services.dataset_from_features(
                model=model,
                feature_service=service,
                label_column=data["label_column"],
                entity_stream=upload,
                entity_reference=data.get("entity_file", ""),
                name=data.get("name", ""),
                user=request.user,
            )
        else:
            if upload is None:
                raise ApplicationError(
                    "file: upload a labelled CSV or Parquet file (or name a feature_service).",
                    extra={"field": "file"},
                )
            dataset = services.dataset_upload(
                model=model,
                stream=upload,
                label_column=data["label_column"],
                name=data.get("name", ""),
                filename=upload.name or "",
                user=request.user,
            )
        return Response(DatasetOutputSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(_ModelApi):
    @extend_schema(tags=TAGS, responses=DatasetOutputSerializer)
    def get(self, request: Request, name: str, dataset: int) -> Response:
        model = self.model_for(request, name)
        found = selectors.dataset_of(model=model, dataset_id=dataset)
        return Response(DatasetOutputSerializer(found).data)

    @extend_schema(tags=TAGS, responses={204: None})
    def delete(self, request: Request, name: str, dataset: int) -> Response:
        """Delete the dataset, its evaluations and its file (409 while the gate uses it)."""
        model = self.model_for(request, name)
        services.dataset_delete(dataset=selectors.dataset_of(model=model, dataset_id=dataset))
        return Response(status=status.HTTP_204_NO_CONTENT)


class GateApi(_ModelApi):
    parser_classes = [JSONParser]

    @extend_schema(tags=TAGS, responses=GateOutputSerializer)
    def get(self, request: Request, name: str) -> Response:
        model = self.model_for(request, name)
        return Response(GateOutputSerializer(selectors.gate_get(model=model)).data)

    @extend_schema(tags=TAGS, request=GateInputSerializer, responses=GateOutputSerializer)
    def put(self, request: Request, name: str) -> Response:
        """Set the gate: a dataset of the model and rules (`roc_auc >= 0.9`,
        `roc_auc >= production - 0.01`, `p95_latency_ms <= 1.2 * production`). Queues the
        evaluations the gate needs."""
        model = self.model_for(request, name)
        serializer = GateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        gate = services.gate_set(
            model=model, dataset_id=data["dataset"], rule_texts=data["rules"], user=request.user
        )
        return Response(GateOutputSerializer(selectors.gate_get(model=gate.model)).data)

    @extend_schema(tags=TAGS, responses={204: None})
    def delete(self, request: Request, name: str) -> Response:
        model = self.model_for(request, name)
        services.gate_delete(model=model)
        return Response(status=status.HTTP_204_NO_CONTENT)


def evaluations_body(version: Any) -> dict[str, Any]:
    """Per dataset: the measured metrics, the job and status, each gate rule's verdict; the
    version's uploaded metrics apart, as `reported`."""
    entries = []
    for entry in selectors.version_evaluations(version=version):
        evaluation = entry.evaluation
        entries.append(
            {
                "dataset": DatasetOutputSerializer(entry.dataset).data,
                "gate": entry.gated,
                "evaluation": (
                    EvaluationOutputSerializer(evaluation).data if evaluation is not None else None
                ),
                "metrics": (evaluation.metrics if evaluation is not None else None),
                "status": evaluation.effective_status if evaluation is not None else None,
                "job": evaluation.job_id if evaluation is not None else None,
                "verdicts": verdicts_data(entry.verdicts),
                "passed": all(v.passed for v in entry.verdicts) if entry.verdicts else None,
            }
        )
    return {
        "model": version.model.name,
        "version": version.version,
        "reported": version.metrics or {},
        "datasets": entries,
    }


class VersionEvaluationsApi(_ModelApi):
    parser_classes = [JSONParser, FormParser]

    @extend_schema(tags=TAGS, responses={200: {"type": "object"}})
    def get(self, request: Request, name: str, version: int) -> Response:
        model = self.model_for(request, name)
        found = registry_selectors.version_get(model=model, version=version)
        return Response(evaluations_body(found))

    @extend_schema(
        tags=TAGS, request=EvaluationRequestSerializer, responses={202: {"type": "object"}}
    )
    def post(self, request: Request, name: str, version: int) -> Response:
        """Evaluate the version now on `dataset` (default: the gate's dataset, else the newest
        ready dataset) → 202 `{"job", "evaluation", "dataset"}`."""
        model = self.model_for(request, name)
        found = registry_selectors.version_get(model=model, version=version)
        serializer = EvaluationRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dataset_id = serializer.validated_data.get("dataset")
        dataset: EvaluationDataset | None
        if dataset_id is not None:
            dataset = selectors.dataset_of(model=model, dataset_id=dataset_id)
        else:
            gate = selectors.gate_of(model=model)
            dataset = (
                gate.dataset
                if gate is not None
                else selectors.dataset_list(model=model)
                .filter(status=EvaluationDataset.Status.READY)
                .first()
            )
            if dataset is None:
                raise ConflictError(
                    f"{model.name} has no evaluation dataset yet: upload one first.",
                    extra={"field": "dataset"},
                )
        queued = services.evaluation_request(version=found, dataset=dataset, user=request.user)
        return Response(
            {"job": queued.job_id, "evaluation": queued.pk, "dataset": dataset.pk},
            status=status.HTTP_202_ACCEPTED,
        )
