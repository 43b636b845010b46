"""/settings/keys/: a person's own provider keys. A key is never shown again after saving."""

from __future__ import annotations

from typing import cast

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from providers import keys, registry, services
from providers.base import Credentials, KeyChecker
from providers.errors import AuthError, PermissionDenied, ProviderError
from providers.forms import ProviderChoiceForm, ProviderKeyForm
from providers.models import ProviderKey


def _check(provider: str, key: str) -> ProviderError | None:
    """Test the key with a cheap call; None when the provider accepted it."""
    credentials = Credentials(api_key=key, base_url=registry.base_url(provider), byok=True)
    try:
        checker = cast(KeyChecker, registry.adapter(provider))  # personal_keys: it checks
        async_to_sync(checker.check_key)(credentials)
    except ProviderError as exc:
        return exc
    return None


def _user_id(request: HttpRequest) -> int:
    assert request.user.pk is not None
    return int(request.user.pk)


# Django's error reports (500 pages in DEBUG, ADMINS mail) show "********" for the key.
@sensitive_post_parameters("key")
@login_required
@require_http_methods(["GET", "POST"])
def keys_page(request: HttpRequest) -> HttpResponse:
    user_id = _user_id(request)
    if request.method == "POST":
        _handle(request, user_id)
        return redirect("keys")
    saved = {row.provider: row for row in ProviderKey.objects.filter(user_id=user_id)}
    rows = [
        {
            "provider": p.name,
            "name": p.label,
            "saved": saved.get(p.name),
            "form": ProviderKeyForm(initial={"provider": p.name}),
        }
        for p in registry.with_personal_keys()
    ]
    return render(request, "settings/keys.html", {"rows": rows})


def _handle(request: HttpRequest, user_id: int) -> None:
    action = request.POST.get("action")
    if action == "save":
        form = ProviderKeyForm(request.POST)
        if not form.is_valid():
            for errors in form.errors.values():
                messages.error(request, " ".join(str(e) for e in errors))
            return
        _save(request, user_id, form.cleaned_data["provider"], form.cleaned_data["key"])
        return
    choice = ProviderChoiceForm(request.POST)
    if not choice.is_valid():
        messages.error(request, "Unknown provider.")
        return
    provider = choice.cleaned_data["provider"]
    name = registry.label(provider)
    if action == "delete":
        if services.provider_key_delete(user_id=user_id, provider=provider):
            messages.success(request, f"Your {name} key was deleted.")
    elif action == "test":
        _retest(request, user_id, provider, name)


def _save(request: HttpRequest, user_id: int, provider: str, key: str) -> None:
    name = registry.label(provider)
    problem = _check(provider, key)
    if isinstance(problem, AuthError | PermissionDenied):
        messages.error(
            request, f"{name} refused that key, so it was not saved. Check it and try again."
        )
        return
    services.provider_key_save(
        user_id=user_id, provider=provider, key=key, verified=problem is None
    )
    if problem is None:
        messages.success(request, f"Your {name} key works and was saved (ending in {key[-4:]}).")
    else:
        messages.warning(
            request,
            f"Your {name} key was saved but could not be checked: {problem.message} "
            "It is marked not verified until a test passes: press Test when the provider "
            "can be reached.",
        )


def _retest(request: HttpRequest, user_id: int, provider: str, name: str) -> None:
    try:
        own = services.own_credentials(
            user_id=user_id, provider=provider, base_url=registry.base_url(provider)
        )
    except keys.KeyDecryptionError:
        messages.error(request, f"Your saved {name} key could not be read. Save it again.")
        return
    if own is None:
        return
    problem = _check(provider, own.api_key)
    verified = timezone.now() if problem is None else None
    services.provider_key_mark_verified(user_id=user_id, provider=provider, when=verified)
    if problem is None:
        messages.success(request, f"Your {name} key works.")
    else:
        messages.error(request, f"Your {name} key failed its test: {problem.message}")
