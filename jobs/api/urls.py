from django.urls import path

from jobs.api import views

# Routed under /api/v1/jobs/ in the `jobs_api` namespace by mlplatform/urls.py, after the list +
# batch submit route (`jobs_api:job-list`, batch/api/urls.py).
urlpatterns = [
    path("<int:job_id>/", views.JobDetailApi.as_view(), name="job-detail"),
    path("<int:job_id>/cancel", views.JobCancelApi.as_view(), name="job-cancel"),
    path("<int:job_id>/output", views.JobOutputApi.as_view(), name="job-output"),
]
