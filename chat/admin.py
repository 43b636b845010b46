from __future__ import annotations

from typing import Any

from django.contrib import admin

from chat.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("role", "status", "model", "content", "error_code", "created_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "owner", "model", "updated_at")
    list_filter = ("model",)
    search_fields = ("title", "owner__username")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "role", "status", "model", "provider", "created_at")
    list_filter = ("role", "status", "provider", "model")
    search_fields = ("conversation__owner__username",)
    raw_id_fields = ("conversation",)
    readonly_fields = ("heartbeat_at", "created_at", "updated_at")

    def lookup_allowed(self, lookup: str, value: str, request: Any = None) -> bool:
        # The drill-down from a person's coin account lists their messages.
        return lookup == "conversation__owner__id__exact" or super().lookup_allowed(
            lookup, value, request
        )
