"""Sign-up, log-in and log-out pages (Django's auth)."""

from __future__ import annotations

import functools
from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model, login
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import include, path
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_http_methods

from billing import services as billing
from chatsite import sql


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
    user = _active_user(user_id)
    if user is None:
        return False
    return constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash())


@functools.cache
def _active_users() -> sql.Rows[AbstractBaseUser]:
    model = get_user_model()
    active = connection.ops.quote_name(model._meta.get_field("is_active").column)
    pk = connection.ops.quote_name(model._meta.pk.column)
    return sql.Rows(model, [model._meta.pk.attname, "password"], f"{pk} = %s AND {active} = %s")


def _active_user(user_id: int) -> AbstractBaseUser | None:
    """The person with only their password hash loaded (all the session's hash needs), if the
    account is active. Read before every send: hand-written SQL (chatsite/sql.py says why)."""
    return _active_users().first([user_id, True])


urlpatterns = [
    path("signup/", signup, name="signup"),
    path("", include("django.contrib.auth.urls")),
]
