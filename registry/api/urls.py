app_name = "registry_api"
urlpatterns: list = []
