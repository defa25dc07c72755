from django.urls import path

from serving import views

app_name = "serving"
urlpatterns = [
    path("models/<slug:name>/try/", views.try_page, name="try"),
    path("models/<slug:name>/predictions/", views.predictions_page, name="predictions"),
    path("models/<slug:name>/traffic/", views.traffic_page, name="traffic"),
    path("models/<slug:name>/charts/<slug:kind>.svg", views.model_chart, name="model-chart"),
]
