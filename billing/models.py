"""Coins (a cached balance per person plus an append-only ledger) and one row per provider call.

Billing knows people and providers, never chat: conversations and messages are referred to by
id only, so dependencies point one way (chat -> billing -> providers).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


class CoinAccount(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="coin_account"
    )
    # The sum of this account's ledger entries, kept alongside them in the same transaction.
    balance = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="coin_balance_never_negative")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.balance} coins)"


class AppendOnly(Exception):
    pass


class LedgerEntry(models.Model):
    class Kind(models.TextChoices):
        GRANT = "grant"
        HOLD = "hold"
        CAPTURE = "capture"
        RELEASE = "release"
        REFUND = "refund"
        ADJUSTMENT = "adjustment"

    account = models.ForeignKey(CoinAccount, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # Signed: what this entry did to the balance.
    amount = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    reason = models.CharField(max_length=200)
    conversation_id = models.BigIntegerField(null=True, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # The admin who made an adjustment.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The same movement can never be applied twice.
    reference = models.CharField(max_length=120, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} ({self.reference})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnly("ledger entries are never changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnly("ledger entries are never deleted")


class LlmUsage(models.Model):
    """One provider attempt (retries and title calls included), written once, at its end."""

    class Status(models.TextChoices):
        OK = "ok"
        ERROR = "error"
        STOPPED = "stopped"
        INTERRUPTED = "interrupted"

    class Purpose(models.TextChoices):
        REPLY = "reply"
        TITLE = "title"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="llm_usage"
    )
    conversation_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    message_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=100)
    byok = models.BooleanField(default=False)
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.REPLY)
    status = models.CharField(max_length=12, choices=Status.choices)
    error_code = models.CharField(max_length=30, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    # A reply's tool loop calls the model once per round (chat/tool_loop.py); its attempt
    # counts within the round.
    round = models.PositiveSmallIntegerField(default=1)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_creation_input_tokens = models.PositiveIntegerField(default=0)
    cache_read_input_tokens = models.PositiveIntegerField(default=0)
    # True when the provider never sent its final count (a stop, a cut) and output was estimated.
    usage_estimated = models.BooleanField(default=False)
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    coins_charged = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "LLM usage"
        verbose_name_plural = "LLM usage"
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            # The dashboard over one model's or one provider's calls in a range
            # (billing/dashboard.py, bench/dashboard.py).
            models.Index(fields=["model", "created_at"], name="usage_model_time"),
            models.Index(fields=["provider", "created_at"], name="usage_provider_time"),
            # Its top spenders: read from this index alone, not the table's wide rows.
            models.Index(
                fields=["created_at", "user", "coins_charged"],
                condition=Q(coins_charged__gt=0),
                name="usage_spending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.status} ({self.input_tokens}+{self.output_tokens} tokens)"
