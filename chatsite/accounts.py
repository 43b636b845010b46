"""Sign-up, log-in and log-out pages (Django's auth)."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model, login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import include, path
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_http_methods

from billing import services as billing


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("chat:list")
    form: UserCreationForm[User] = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            billing.account_open(user_id=user.pk)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("chat:list")
    return render(request, "registration/signup.html", {"form": form})


def still_signed_in(*, user_id: int, session_key: str | None) -> bool:
    """Whether the session a socket was opened with still signs in this person: not logged
    out, not expired, no password change since, account still active."""
    if not session_key:
        return False
    engine = import_module(settings.SESSION_ENGINE)
    data = engine.SessionStore(session_key).load()
    if str(data.get(SESSION_KEY)) != str(user_id):
        return False
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    return constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash())


urlpatterns = [
    path("signup/", signup, name="signup"),
    path("", include("django.contrib.auth.urls")),
]
