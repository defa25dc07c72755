from django.urls import path

from jobs import views

# Routed under /jobs/ in the `jobs` namespace by mlplatform/urls.py, together with batch's
# scoring form (batch/urls.py): URL names stay `jobs:list`, `jobs:new`, ...
urlpatterns = [
    path("", views.job_list, name="list"),
    path("<int:pk>/", views.job_detail, name="detail"),
    path("<int:pk>/progress", views.job_progress, name="progress"),
    path("<int:pk>/cancel", views.job_cancel, name="cancel"),
    path("<int:pk>/output", views.job_download, name="download"),
]
