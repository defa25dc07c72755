from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import batch, selectors, services
from jobs.api.serializers import BatchJobInputSerializer, JobOutputSerializer
from mlplatform.api import Pagination
from mlplatform.errors import ApplicationError, NotFoundError
from tenancy.services import write_check


class JobListApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        parameters=[OpenApiParameter("kind", str), OpenApiParameter("status", str)],
        responses=JobOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        jobs = selectors.job_list(
            user=request.user,
            kind=request.query_params.get("kind"),
            status=request.query_params.get("status"),
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(jobs, request, view=self)
        data = JobOutputSerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)

    @extend_schema(request=BatchJobInputSerializer, responses={201: JobOutputSerializer})
    def post(self, request: Request) -> Response:
        """Queue a batch scoring job for an uploaded CSV or Parquet file."""
        serializer = BatchJobInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data["input"]
        if upload.size > settings.MLPLATFORM_MAX_UPLOAD_BYTES:
            raise ApplicationError(
                f"input: {upload.size} bytes exceed the limit of "
                f"{settings.MLPLATFORM_MAX_UPLOAD_BYTES} (MLPLATFORM_MAX_UPLOAD_BYTES).",
                extra={"field": "input"},
                status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        version = selectors.batch_version_pin(
            model_name=data["model"], version=data.get("version"), alias=data.get("alias")
        )
        job = batch.batch_job_submit(
            version=version,
            stream=upload,
            filename=upload.name or "",
            outputs=batch.outputs_parse(data.get("outputs")),
            id_columns=batch.names_parse(data.get("id_columns")),
            output_format=batch.format_parse(data.get("format")),
            submitted_by=request.user,
            as_of=data.get("as_of", False),
        )
        body = JobOutputSerializer(job, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


class JobDetailApi(APIView):
    @extend_schema(responses=JobOutputSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.job_get(job_id=job_id, user=request.user)
        return Response(JobOutputSerializer(job, context={"request": request}).data)


class JobCancelApi(APIView):
    @extend_schema(request=None, responses=JobOutputSerializer)
    def post(self, request: Request, job_id: int) -> Response:
        job = selectors.job_get(job_id=job_id, user=request.user)
        write_check(user=request.user, perm="jobs.cancel_job", obj=job)  # a grant only reads
        job = services.job_cancel(job=job)
        return Response(JobOutputSerializer(job, context={"request": request}).data)


class JobOutputApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, job_id: int) -> FileResponse:
        job = selectors.job_get(job_id=job_id, user=request.user)
        if job.output_expired_at is not None:
            raise ApplicationError(
                f"The output of job {job_id} expired on {job.output_expired_at:%Y-%m-%d} and was "
                "deleted (MLPLATFORM_JOB_OUTPUT_RETENTION_DAYS).",
                status_code=status.HTTP_410_GONE,
            )
        if not job.output:
            raise NotFoundError(f"Job {job_id} has no output (status: {job.status}).")
        filename = job.output.name.rsplit("/", 1)[-1]
        return FileResponse(
            job.output.open("rb"),
            as_attachment=True,
            filename=filename,
            content_type=job.output_content_type or "application/octet-stream",
        )
