"""Stored keys: authenticated encryption bound to person and provider, rotation, no leaks."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from providers import keys, services
from providers.models import ProviderKey

pytestmark = pytest.mark.django_db
SECRET = "sk-ant-api03-very-secret-key-9f8e"


def test_a_key_round_trips_and_only_its_last_four_are_kept_in_clear(alice: Any) -> None:
    row = services.provider_key_save(
        user_id=alice.pk, provider="anthropic", key=SECRET, verified=True
    )
    assert row.last4 == "9f8e" and SECRET not in row.ciphertext
    credentials = services.own_credentials(user_id=alice.pk, provider="anthropic", base_url=None)
    assert credentials is not None and credentials.api_key == SECRET and credentials.byok
    assert SECRET not in repr(credentials)


def test_a_ciphertext_moved_to_another_person_or_provider_does_not_decrypt(
    alice: Any, bob: Any
) -> None:
    row = services.provider_key_save(
        user_id=alice.pk, provider="anthropic", key=SECRET, verified=True
    )
    with pytest.raises(keys.KeyDecryptionError):
        keys.decrypt(user_id=bob.pk, provider="anthropic", ciphertext=row.ciphertext)
    with pytest.raises(keys.KeyDecryptionError):
        keys.decrypt(user_id=alice.pk, provider="openai", ciphertext=row.ciphertext)


def test_a_key_under_an_unknown_encryption_key_is_an_error_not_ciphertext(
    alice: Any, settings: Any
) -> None:
    services.provider_key_save(user_id=alice.pk, provider="anthropic", key=SECRET, verified=True)
    settings.BYOK_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(keys.KeyDecryptionError):
        services.own_credentials(user_id=alice.pk, provider="anthropic", base_url=None)


def test_rotation_re_encrypts_under_the_newest_key(alice: Any, settings: Any) -> None:
    old = settings.BYOK_ENCRYPTION_KEYS[0]
    services.provider_key_save(user_id=alice.pk, provider="anthropic", key=SECRET, verified=True)
    new = Fernet.generate_key().decode()
    settings.BYOK_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_byok_keys")
    settings.BYOK_ENCRYPTION_KEYS = [new]  # the old key retired
    credentials = services.own_credentials(user_id=alice.pk, provider="anthropic", base_url=None)
    assert credentials is not None and credentials.api_key == SECRET


def test_rotation_reports_keys_it_cannot_read(alice: Any, settings: Any) -> None:
    services.provider_key_save(user_id=alice.pk, provider="anthropic", key=SECRET, verified=True)
    settings.BYOK_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="could not be decrypted"):
        call_command("rotate_byok_keys")
    assert ProviderKey.objects.count() == 1
