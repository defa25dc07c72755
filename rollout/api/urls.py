from django.urls import path

from rollout.api import views

app_name = "rollout_api"
urlpatterns = [
    path(
        "models/<slug:name>/evaluation-datasets/",
        views.DatasetListApi.as_view(),
        name="dataset-list",
    ),
    path(
        "models/<slug:name>/evaluation-datasets/<int:dataset>/",
        views.DatasetDetailApi.as_view(),
        name="dataset-detail",
    ),
    path("models/<slug:name>/gate/", views.GateApi.as_view(), name="gate"),
    path(
        "models/<slug:name>/versions/<int:version>/evaluations/",
        views.VersionEvaluationsApi.as_view(),
        name="version-evaluations",
    ),
]
