from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from providers.models import ProviderKey


@admin.register(ProviderKey)
class ProviderKeyAdmin(admin.ModelAdmin):
    """Which people use their own keys; the keys themselves never appear (last 4 only)."""

    list_display = ("user", "provider", "masked", "verified_at", "updated_at")
    list_filter = ("provider",)
    search_fields = ("user__username",)
    fields = ("user", "provider", "masked", "verified_at", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="Key")
    def masked(self, row: ProviderKey) -> str:
        return f"••••{row.last4}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
