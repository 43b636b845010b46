from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from billing.services import NO_COINS_NEXT, balance_of


def coins(request: HttpRequest) -> dict[str, object]:
    """The logged-in person's balance for the page header."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "coin_balance": balance_of(user_id=user.pk),
        "low_balance": settings.LOW_BALANCE_COINS,
        "no_coins_next": NO_COINS_NEXT,
    }
