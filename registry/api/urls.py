from django.urls import path

from registry.api import views

app_name = "registry_api"
urlpatterns = [
    path("models/", views.ModelListApi.as_view(), name="model-list"),
    path("models/<slug:name>/", views.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<slug:name>/versions/", views.VersionListApi.as_view(), name="version-list"),
    path(
        "models/<slug:name>/versions/<int:version>/",
        views.VersionDetailApi.as_view(),
        name="version-detail",
    ),
    path(
        "models/<slug:name>/versions/<int:version>/artifact",
        views.VersionArtifactApi.as_view(),
        name="version-artifact",
    ),
    path("models/<slug:name>/aliases/", views.AliasListApi.as_view(), name="alias-list"),
    path(
        "models/<slug:name>/alias-history/",
        views.AliasHistoryApi.as_view(),
        name="alias-history",
    ),
    path(
        "models/<slug:name>/aliases/<slug:alias>/",
        views.AliasDetailApi.as_view(),
        name="alias-detail",
    ),
    path(
        "models/<slug:name>/aliases/<slug:alias>/rollback",
        views.AliasRollbackApi.as_view(),
        name="alias-rollback",
    ),
]
