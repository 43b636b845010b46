from __future__ import annotations

from django.conf import settings
from django.db import models


class ProviderKey(models.Model):
    """A person's own key for a provider (BYOK), encrypted at rest; only its last 4 are shown."""

    class Provider(models.TextChoices):
        ANTHROPIC = "anthropic", "Anthropic"
        OPENAI = "openai", "OpenAI"
        OPENROUTER = "openrouter", "OpenRouter"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_keys"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
    ciphertext = models.TextField()
    last4 = models.CharField(max_length=4)
    # When a test call last accepted the key; None if it could not be checked.
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "provider"], name="one_key_per_provider")
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} key ••••{self.last4}"
