from django.urls import path

from features.api import views

app_name = "features_api"
urlpatterns = [
    # First: online reads are the hot path, and patterns are tried in order.
    path("online/", views.OnlineApi.as_view(), name="online"),
    path("entities/", views.EntityListApi.as_view(), name="entity-list"),
    path("entities/<slug:name>/", views.EntityDetailApi.as_view(), name="entity-detail"),
    path("sources/", views.SourceListApi.as_view(), name="source-list"),
    path("sources/<slug:name>/", views.SourceDetailApi.as_view(), name="source-detail"),
    path("groups/", views.GroupListApi.as_view(), name="group-list"),
    path("groups/<slug:name>/", views.GroupDetailApi.as_view(), name="group-detail"),
    path("groups/<slug:name>/ingest", views.GroupIngestApi.as_view(), name="group-ingest"),
    path("groups/<slug:name>/run", views.GroupRunApi.as_view(), name="group-run"),
    path(
        "groups/<slug:name>/materialize",
        views.GroupMaterializeApi.as_view(),
        name="group-materialize",
    ),
    path("features/", views.FeatureListApi.as_view(), name="feature-list"),
    path(
        "features/<slug:group>/<slug:name>/",
        views.FeatureDetailApi.as_view(),
        name="feature-detail",
    ),
    path("services/", views.ServiceListApi.as_view(), name="service-list"),
    path("services/<slug:name>/", views.ServiceDetailApi.as_view(), name="service-detail"),
    path("training-sets/", views.TrainingSetApi.as_view(), name="training-sets"),
]
