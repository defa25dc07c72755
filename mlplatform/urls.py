from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from batch import urls as batch_urls
from batch.api import urls as batch_api_urls
from jobs import urls as jobs_urls
from jobs.api import urls as jobs_api_urls
from mlplatform import audit_views, health, views

# /jobs and /api/v1/jobs/ are the job tracker's, plus batch scoring's form and submit: one URL
# namespace each, so names (`jobs:new`, `jobs_api:job-list`, ...) stay as they were.
jobs_pages = ([*batch_urls.urlpatterns, *jobs_urls.urlpatterns], "jobs")
jobs_api = ([*batch_api_urls.urlpatterns, *jobs_api_urls.urlpatterns], "jobs_api")

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/features/", include("features.api.urls")),
    path("api/v1/jobs/", include(jobs_api)),
    path("api/v1/tokens/", include("accounts.api.urls")),
    path("api/v1/audit/<str:label>/<str:pk>/", audit_views.AuditApi.as_view(), name="audit-api"),
    path("audit/<str:label>/<str:pk>/", audit_views.audit_page, name="audit"),
    path("api/v1/", include("registry.api.urls")),
    # Evaluation datasets, promotion gates and evaluations, under /api/v1/models/{name}/.
    path("api/v1/", include("rollout.api.urls")),
    # Reference profiles, monitoring windows, feedback and alerts, under /api/v1/models/{name}/.
    path("api/v1/", include("monitoring.api.urls")),
    # Serving owns the predict routes under /api/v1/, and /mlflow/, /v2/ and /metrics.
    path("", include("serving.api.urls")),
    # Feast's feature server routes (/get-online-features, /push), where Feast's clients call them.
    path("", include("features.api.feast_urls")),
    path("models/", include("registry.urls")),
    path("models/", include("rollout.urls")),
    path("models/", include("monitoring.urls")),
    path("features/", include("features.urls")),
    path("jobs/", include(jobs_pages)),
    path("serving/", include("serving.urls")),
]
