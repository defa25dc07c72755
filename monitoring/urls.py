from django.urls import path

from monitoring import views

app_name = "monitoring"
urlpatterns = [
    # Under /models/: a model's tab, the button that runs the job, the model page's badge.
    path("<slug:name>/monitoring/", views.model_monitoring, name="model"),
    path("<slug:name>/monitoring/run", views.run_now, name="run"),
    path("<slug:name>/monitoring/badge", views.model_badge, name="badge"),
    # The feature catalog's badges (feature groups with firing alerts), one request per page.
    path("monitoring/group-badges", views.group_badges, name="group-badges"),
]
