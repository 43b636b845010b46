"""Sign-up, log-in and log-out pages (Django's auth)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from importlib import import_module
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.http import require_http_methods


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("chat:list")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():  # the person and their coin account (billing/signals.py)
            user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("chat:list")
    return render(request, "registration/signup.html", {"form": form})


def client_address(request: HttpRequest) -> str | None:
    """The address log-in throttling counts (settings.AXES_CLIENT_IP_CALLABLE): the one the
    server saw, never a header a client could set."""
    address: str | None = request.META.get("REMOTE_ADDR")
    return address


def account_pages(request: HttpRequest) -> dict[str, Any]:
    """What the account pages offer (a template context processor)."""
    return {"password_reset_enabled": settings.PASSWORD_RESET_ENABLED}


def locked_out(request: HttpRequest, response: Any = None, credentials: Any = None) -> HttpResponse:
    """The page of a log-in that too many failures locked out (settings.AXES_LOCKOUT_CALLABLE):
    429, saying why, for how long, and what else can be done."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "minutes": minutes,
    }
    return render(request, "registration/locked_out.html", context, status=429)


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


def sessions_ended(session_keys: set[str]) -> set[str]:
    """Which of `session_keys` no longer exist or have expired (database engines; with another
    engine none can be told ended here, and each socket's own expiry timer still applies)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    get_model_class = getattr(store, "get_model_class", None)
    if get_model_class is None or not session_keys:
        return set()
    live = get_model_class().objects.filter(
        session_key__in=session_keys, expire_date__gt=timezone.now()
    )
    return session_keys - set(live.values_list("session_key", flat=True))


def signed_in_until(*, user_id: int, session_key: str | None) -> dt.datetime | None:
    """Until when the session a socket was opened with signs this person in (None: not now)."""
    if not still_signed_in(user_id=user_id, session_key=session_key):
        return None
    assert session_key is not None
    return session_expiry(import_module(settings.SESSION_ENGINE).SessionStore(session_key))


class SignupForm(UserCreationForm):  # type: ignore[type-arg]
    """Django's sign-up form, with an optional email address: the one a password reset goes to."""

    email = forms.EmailField(
        required=False,
        help_text="Optional. Only used to send you a link if you forget your password.",
    )

    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined]
        model = User
        fields = ("username", "email")


def _only_with_mail(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """A password-reset page, there only when the site can send mail (PASSWORD_RESET_ENABLED)."""

    @functools.wraps(view)
    def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not settings.PASSWORD_RESET_ENABLED:
            raise Http404("This site sends no mail, so it cannot reset passwords.")
        return view(request, *args, **kwargs)

    return page


_RESET = (
    ("password_reset/", auth_views.PasswordResetView, "password_reset"),
    ("password_reset/done/", auth_views.PasswordResetDoneView, "password_reset_done"),
    ("reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView, "password_reset_confirm"),
    ("reset/done/", auth_views.PasswordResetCompleteView, "password_reset_complete"),
)

urlpatterns = [
    path("signup/", signup, name="signup"),
    *(path(route, _only_with_mail(view.as_view()), name=name) for route, view, name in _RESET),
    path("", include("django.contrib.auth.urls")),
]
