from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from jobs import selectors, services
from jobs.models import Job
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
