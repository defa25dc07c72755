from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from jobs import schedules, selectors, services
from jobs.models import BatchChunk, BatchJob, BatchSchedule, Job
from tenancy.admin import OwnedModelAdmin


@admin.register(Job)
class JobAdmin(OwnedModelAdmin):
    list_display = ["id", "kind", "status", "description", "progress_done", "progress_total"]
    list_filter = ["kind", "status"]
    search_fields = ["description", "error"]
    readonly_fields = [field.name for field in Job._meta.fields]
    actions = ["cancel"]

    @admin.action(description="Cancel the selected jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        refused = 0
        for job in queryset.exclude(status__in=Job.FINISHED):
            if not request.user.has_perm("jobs.cancel_job", job):
                refused += 1
                continue
            services.job_cancel(job=job)
        if refused:
            messages.error(request, f"{refused} jobs are not your team's: left running.")
        messages.success(request, "Cancelled.")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        # The same jobs as on /jobs/: the user's, their teams', granted ones.
        return (
            super()
            .get_queryset(request)
            .filter(pk__in=selectors.jobs_visible(user=request.user).values("pk"))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


CHUNK_FIELDS = ("index", "row_start", "row_count", "status", "attempts", "claimed_by", "error")


class BatchChunkInline(admin.TabularInline):
    model = BatchChunk
    extra = 0
    can_delete = False
    fields = CHUNK_FIELDS
    readonly_fields = CHUNK_FIELDS


@admin.register(BatchJob)
class BatchJobAdmin(admin.ModelAdmin):
    list_display = ["job", "version", "input_format", "output_format", "rows_total"]
    readonly_fields = [field.name for field in BatchJob._meta.fields]
    inlines = [BatchChunkInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[BatchJob]:
        return (
            super()
            .get_queryset(request)
            .filter(job__in=selectors.jobs_visible(user=request.user).values("pk"))
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return super().has_delete_permission(request)
        return request.user.has_perm("jobs.delete_job", obj.job)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(BatchSchedule)
class BatchScheduleAdmin(OwnedModelAdmin):
    list_display = [
        "name",
        "model",
        "alias",
        "folder",
        "crontab",
        "enabled",
        "owner",
        "last_run_at",
    ]
    readonly_fields = ["periodic_task", "last_input", "last_run_at", "created_by"]

    def save_model(self, request: HttpRequest, obj: BatchSchedule, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        schedules.batch_schedule_save(schedule=obj)

    def delete_model(self, request: HttpRequest, obj: BatchSchedule) -> None:
        schedules.batch_schedule_delete(schedule=obj)
