"""Sign-up, log-in and log-out pages (Django's auth)."""

from __future__ import annotations

import datetime as dt
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user, login
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import include, path
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


class _SessionOnly:
    """What Django's `auth.get_user` reads of a request: its session."""

    def __init__(self, session: SessionBase) -> None:
        self.session = session


def session_user(session: SessionBase) -> AbstractBaseUser | None:
    """The person `session` signs in, as Django decides it for a page: the session's own
    backend (`AUTHENTICATION_BACKENDS`) finds them, and the password's session hash must still
    match (a changed password, a disabled account or a signed-out session signs nobody in;
    Django flushes such a session, as on a page)."""
    user = get_user(_SessionOnly(session))  # type: ignore[arg-type]
    return user if user.is_authenticated else None  # type: ignore[return-value]


def still_signed_in(*, user_id: int, session_key: str | None) -> bool:
    """Whether the session a socket was opened with still signs in this person: not logged
    out, not expired, no password change since, account still active."""
    if not session_key:
        return False
    user = session_user(import_module(settings.SESSION_ENGINE).SessionStore(session_key))
    return user is not None and user.pk == user_id


def session_expiry(session: SessionBase) -> dt.datetime | None:
    """When `session` ends: its row's `expire_date` for the database engines (read fresh, so a
    page that extended it counts), else what the session itself says; None when it is gone."""
    get_model_class = getattr(session, "get_model_class", None)
    if get_model_class is None:
        return session.get_expiry_date()
    model = get_model_class()
    rows = model.objects.filter(session_key=session.session_key)
    expiry: dt.datetime | None = rows.values_list("expire_date", flat=True).first()
    return expiry


def signed_in_until(*, user_id: int, session_key: str | None) -> dt.datetime | None:
    """Until when the session a socket was opened with signs this person in (None: not now)."""
    if not still_signed_in(user_id=user_id, session_key=session_key):
        return None
    assert session_key is not None
    return session_expiry(import_module(settings.SESSION_ENGINE).SessionStore(session_key))


urlpatterns = [
    path("signup/", signup, name="signup"),
    path("", include("django.contrib.auth.urls")),
]
