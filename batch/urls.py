from django.urls import path

from batch import views

# Routed under /jobs/ in the `jobs` namespace by mlplatform/urls.py (`jobs:new`, `jobs:new-check`).
urlpatterns = [
    path("new", views.job_new, name="new"),
    path("new/check", views.job_new_check, name="new-check"),
]
