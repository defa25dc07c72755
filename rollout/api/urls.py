app_name = "rollout_api"
urlpatterns: list = []
