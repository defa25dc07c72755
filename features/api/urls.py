app_name = "features_api"
urlpatterns: list = []
