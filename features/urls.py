app_name = "features"
urlpatterns: list = []
