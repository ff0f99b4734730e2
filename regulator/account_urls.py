"""Accounts (login flow with second factor, password change) and the security pages.

The security pages are namespaced ``security`` (``security:audit`` for the auditor's log).
"""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from regulator.security import views

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/verify/", views.mfa_verify, name="mfa_verify"),
    path("login/enrol/", views.mfa_enrol, name="mfa_enrol"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="registration/password_change_done.html"),
        name="password_change_done",
    ),
    path("security/", include(("regulator.security.urls", "security"))),
]
