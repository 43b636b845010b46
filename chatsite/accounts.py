"""Sign-up, log-in and log-out pages (Django's auth)."""

from __future__ import annotations

import functools
from importlib import import_module

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    login,
)
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
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


def session_user(session: SessionBase) -> AbstractBaseUser | None:
    """The person `session` signs in, as Django's `auth.get_user` decides it for the model
    backend (signed in, account active, the password's session hash from the current secret
    key or a fallback one), without its writes: a stale session is not flushed here, nor a
    fallback hash rotated (the next page does both). Read at every socket's handshake and
    before every send, so the person is read by hand-written SQL: the ORM's `get()` cost about
    0.5 ms of CPU of a reply's 10 on PostgreSQL (docs/benchmarks.md, eighth measurement)."""
    data = session.load()
    user_id = data.get(SESSION_KEY)
    if user_id is None or data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return None
    try:
        user = _active_user(get_user_model()._meta.pk.to_python(user_id))
    except ValidationError:
        return None
    if user is None:
        return None
    session_hash = data.get(HASH_SESSION_KEY, "")
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return user
    if session_hash and any(
        constant_time_compare(session_hash, fallback)
        for fallback in user.get_session_auth_fallback_hash()
    ):
        return user
    return None


def still_signed_in(*, user_id: int, session_key: str | None) -> bool:
    """Whether the session a socket was opened with still signs in this person: not logged
    out, not expired, no password change since, account still active."""
    if not session_key:
        return False
    user = session_user(import_module(settings.SESSION_ENGINE).SessionStore(session_key))
    return user is not None and user.pk == user_id


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
