from django.urls import path

from jobs.api import views

app_name = "jobs_api"
urlpatterns = [
    path("", views.JobListApi.as_view(), name="job-list"),
    path("<int:job_id>/", views.JobDetailApi.as_view(), name="job-detail"),
    path("<int:job_id>/cancel", views.JobCancelApi.as_view(), name="job-cancel"),
    path("<int:job_id>/output", views.JobOutputApi.as_view(), name="job-output"),
]
