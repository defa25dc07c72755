from django.urls import path

from monitoring.api import reference, views

app_name = "monitoring_api"
urlpatterns = [
    path("models/<slug:name>/feedback", views.FeedbackApi.as_view(), name="feedback"),
    path("models/<slug:name>/alert-rules/", views.AlertRulesApi.as_view(), name="alert-rules"),
    path("models/<slug:name>/monitoring/run", views.MonitoringRunApi.as_view(), name="run"),
    path("models/<slug:name>/monitoring/", views.MonitoringApi.as_view(), name="monitoring"),
    path(
        "models/<slug:name>/versions/<int:version>/reference",
        reference.ReferenceApi.as_view(),
        name="reference",
    ),
]
