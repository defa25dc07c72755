from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="accounts/login.html"),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tokens/", views.token_list, name="tokens"),
    # Django's default landing after sign-in; the profile is the tokens page
    path("profile/", views.token_list, name="profile"),
    path("tokens/<int:token_id>/revoke", views.token_revoke, name="token-revoke"),
]
