"""Writes and reads of people's own provider keys."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from providers import keys
from providers.base import Credentials
from providers.models import ProviderKey

MAX_KEY_LENGTH = 500


def provider_key_save(*, user_id: int, provider: str, key: str, verified: bool) -> ProviderKey:
    """Add or replace a person's key for `provider`."""
    saved, _ = ProviderKey.objects.update_or_create(
        user_id=user_id,
        provider=provider,
        defaults={
            "ciphertext": keys.encrypt(user_id=user_id, provider=provider, key=key),
            "last4": key[-4:],
            "verified_at": timezone.now() if verified else None,
        },
    )
    return saved


def provider_key_mark_verified(*, user_id: int, provider: str, when: dt.datetime | None) -> None:
    ProviderKey.objects.filter(user_id=user_id, provider=provider).update(verified_at=when)


def provider_key_delete(*, user_id: int, provider: str) -> bool:
    deleted, _ = ProviderKey.objects.filter(user_id=user_id, provider=provider).delete()
    return deleted > 0


def own_providers(*, user_id: int) -> set[str]:
    return set(ProviderKey.objects.filter(user_id=user_id).values_list("provider", flat=True))


def own_credentials(*, user_id: int, provider: str, base_url: str | None) -> Credentials | None:
    """The person's own key for `provider`, decrypted (raises KeyDecryptionError if it can't)."""
    ciphertext = (
        ProviderKey.objects.filter(user_id=user_id, provider=provider)
        .values_list("ciphertext", flat=True)
        .first()
    )
    if ciphertext is None:
        return None
    key = keys.decrypt(user_id=user_id, provider=provider, ciphertext=ciphertext)
    return Credentials(api_key=key, base_url=base_url, byok=True)


def provider_keys_rotate() -> tuple[int, list[int]]:
    """Re-encrypt every stored key under the newest BYOK key: (rotated, ids that failed)."""
    rotated, failed = 0, []
    for row in ProviderKey.objects.all().iterator():
        try:
            row.ciphertext = keys.rotate(row.ciphertext)
        except keys.KeyDecryptionError:
            failed.append(row.pk)
            continue
        row.save(update_fields=["ciphertext", "updated_at"])
        rotated += 1
    return rotated, failed
