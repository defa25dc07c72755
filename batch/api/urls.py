from django.urls import path

from batch.api import views

# Routed under /api/v1/jobs/ in the `jobs_api` namespace by mlplatform/urls.py: GET lists jobs
# (the job tracker's view), POST queues a batch scoring job.
urlpatterns = [
    path("", views.JobListSubmitApi.as_view(), name="job-list"),
]
