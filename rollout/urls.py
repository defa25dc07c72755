from django.urls import path

from rollout import views

app_name = "rollout"
urlpatterns = [
    path("<slug:name>/rollout/", views.model_rollout, name="model"),
    path("<slug:name>/rollout/evaluate", views.evaluate_now, name="evaluate"),
]
