from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import selectors, services
from jobs.api.serializers import JobOutputSerializer
from mlplatform.api import Pagination
from mlplatform.errors import ApplicationError, NotFoundError
from tenancy.services import write_check


# `GET /api/v1/jobs/`: the jobs the user may see. The same path's POST (a batch scoring job) is
# added by batch.api.views.JobListSubmitApi, which mlplatform/urls.py routes. (A comment, not a
# docstring: drf-spectacular would publish a docstring as the operation's description.)
class JobListApi(APIView):
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
