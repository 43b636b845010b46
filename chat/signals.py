"""Signing out, changing a password or losing an account closes that person's open sockets."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from chat.frames import Close
from chat.relay import revoke_sockets

logger = logging.getLogger(__name__)


def _revoke(user_id: int, session_key: str | None, code: int) -> None:
    try:
        async_to_sync(revoke_sockets)(user_id=user_id, session_key=session_key, code=code)
    except Exception:
        # The sockets still re-check the session before every paid action.
        logger.exception("could not close the sockets of person %s", user_id)


@receiver(user_logged_out)
def close_sockets_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None or request is None:
        return
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    _revoke(user.pk, session_key, int(Close.SIGNED_OUT))


@receiver(post_save, sender=get_user_model())
def close_sockets_on_password_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A new password (set_password leaves `_password` until save ends) or a deactivated
    account: every socket of the person goes; sessions that are still valid reconnect."""
    if kwargs.get("created") or (
        getattr(instance, "_password", None) is None and instance.is_active
    ):
        return
    # Still active: the page reconnects at once, and a stale session is refused there.
    code = int(Close.RESYNC if instance.is_active else Close.SIGNED_OUT)
    user_id = instance.pk
    transaction.on_commit(lambda: _revoke(user_id, None, code))
