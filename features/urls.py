from django.urls import path

from features import views

app_name = "features"
urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("training-set/", views.training_set, name="training-set"),
    path("entities/<slug:name>/", views.entity_detail, name="entity-detail"),
    path("sources/<slug:name>/", views.source_detail, name="source-detail"),
    path("services/<slug:name>/", views.service_detail, name="service-detail"),
    path("groups/<slug:name>/", views.group_detail, name="group-detail"),
    path("groups/<slug:group>/<slug:name>/", views.feature_detail, name="feature-detail"),
]
