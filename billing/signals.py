"""Every person has a coin account, however they were made: sign-up, `createsuperuser`, the
admin or the shell. It is opened (with the welcome coins) in the transaction that creates them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from billing.services import account_open


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def open_an_account_for_every_new_person(
    sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if created and not raw:  # not while loading fixtures
        account_open(user_id=instance.pk)
