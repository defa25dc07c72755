from django.urls import path

from registry import views

app_name = "registry"
urlpatterns = [
    path("", views.model_list, name="model-list"),
    path("<slug:name>/", views.model_detail, name="model-detail"),
    path("<slug:name>/compare/", views.versions_compare, name="compare"),
    path("<slug:name>/aliases/", views.alias_change, name="alias-change"),
    path("<slug:name>/versions/<int:version>/", views.version_detail, name="version-detail"),
    path("<slug:name>/versions/<int:version>/row", views.version_row, name="version-row"),
]
