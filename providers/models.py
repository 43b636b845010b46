from __future__ import annotations

from django.conf import settings
from django.db import models

from providers import registry


class ProviderKey(models.Model):
    """A person's own key for a provider (BYOK), encrypted at rest; only its last 4 are shown."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_keys"
    )
    # A name from providers/registry.py (not choices: a new provider needs no migration).
    provider = models.CharField(max_length=20)
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
        return f"{registry.label(self.provider)} key ••••{self.last4}"


class ReportedModel(models.Model):
    """What a provider's models API last said about a catalogue model (`sync_models`).

    Limits and lifecycle change upstream; storing them keeps them out of code. Every process
    overlays these rows on the built-in catalogue (providers/model_sync.py).
    """

    class Lifecycle(models.TextChoices):
        ACTIVE = "active"
        DEPRECATED = "deprecated"
        RETIRED = "retired"

    model_id = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=20)
    display_name = models.CharField(max_length=200, blank=True)
    lifecycle = models.CharField(max_length=12, choices=Lifecycle.choices)
    context_window = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    retires_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField()

    class Meta:
        ordering = ["provider", "model_id"]

    def __str__(self) -> str:
        return f"{self.model_id} ({self.lifecycle})"
