from django.urls import path

from accounts.api import views

app_name = "accounts_api"
urlpatterns = [
    path("", views.TokenListApi.as_view(), name="token-list"),
    path("<int:token_id>/", views.TokenDetailApi.as_view(), name="token-detail"),
]
