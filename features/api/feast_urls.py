"""Feast's feature server routes, at the site root where Feast's clients call them."""

from django.urls import path

from features.api import feast

app_name = "feast"
urlpatterns = [
    path(
        "get-online-features",
        feast.GetOnlineFeaturesApi.as_view(),
        name="get-online-features",
    ),
    path("push", feast.PushApi.as_view(), name="push"),
    path(
        "write-to-online-store",
        feast.WriteToOnlineStoreApi.as_view(),
        name="write-to-online-store",
    ),
]
