"""Encryption of people's provider keys: MultiFernet under BYOK_ENCRYPTION_KEYS (not SECRET_KEY).

The person and provider are bound into the plaintext, so a ciphertext copied to another row
does not decrypt there. A failure to decrypt is an error, never a silent fallback.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class KeyDecryptionError(Exception):
    """A stored key could not be decrypted with any configured BYOK key."""


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k.strip().encode()) for k in settings.BYOK_ENCRYPTION_KEYS])


def _binding(user_id: int, provider: str) -> bytes:
    return f"{user_id}:{provider}:".encode()


def encrypt(*, user_id: int, provider: str, key: str) -> str:
    return _fernet().encrypt(_binding(user_id, provider) + key.encode()).decode()


def decrypt(*, user_id: int, provider: str, ciphertext: str) -> str:
    try:
        plaintext = _fernet().decrypt(ciphertext.encode())
    except (InvalidToken, ValueError):
        raise KeyDecryptionError("a stored provider key could not be decrypted") from None
    binding = _binding(user_id, provider)
    if not plaintext.startswith(binding):
        raise KeyDecryptionError("a stored provider key belongs to another person or provider")
    return plaintext[len(binding) :].decode()


def rotate(ciphertext: str) -> str:
    """The same secret encrypted under the first (newest) key."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except (InvalidToken, ValueError):
        raise KeyDecryptionError("a stored provider key could not be decrypted") from None
