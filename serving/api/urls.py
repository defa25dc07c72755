app_name = "serving_api"
urlpatterns: list = []
