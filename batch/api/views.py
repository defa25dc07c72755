"""`POST /api/v1/jobs/`: queue a batch scoring job. One path serves the jobs list (GET, the job
tracker's) and this submit (POST): the combined view lives here, in the layer that knows both,
and mlplatform/urls.py routes it."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from batch import inputs, selectors, submit
from batch.api.serializers import BatchJobInputSerializer
from jobs.api.serializers import JobOutputSerializer
from jobs.api.views import JobListApi
from mlplatform.errors import ApplicationError


class JobListSubmitApi(JobListApi):
    parser_classes = [MultiPartParser, FormParser]

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
        job = submit.batch_job_submit(
            version=version,
            stream=upload,
            filename=upload.name or "",
            outputs=inputs.outputs_parse(data.get("outputs")),
            id_columns=inputs.names_parse(data.get("id_columns")),
            output_format=inputs.format_parse(data.get("format")),
            submitted_by=request.user,
            as_of=data.get("as_of", False),
        )
        body = JobOutputSerializer(job, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)
