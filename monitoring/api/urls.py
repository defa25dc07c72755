app_name = "monitoring_api"
urlpatterns: list = []
