from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from chat.maintenance import replies_settle_unsettled
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
    list_display = (
        "id", "conversation", "role", "status", "unsettled", "model", "provider", "created_at"
    )  # fmt: skip
    list_filter = ("unsettled", "role", "status", "provider", "model")
    search_fields = ("conversation__owner__username",)
    raw_id_fields = ("conversation",)
    readonly_fields = ("unsettled", "heartbeat_at", "created_at", "updated_at")
    actions = ["settle_now"]

    @admin.action(description="Bill the selected unsettled replies now")
    def settle_now(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        chosen = list(queryset.filter(unsettled=True).values_list("pk", flat=True))
        settled = replies_settle_unsettled(message_ids=chosen)
        self.message_user(request, f"Billed {len(settled)} of {len(chosen)} unsettled repl(ies).")

    def lookup_allowed(self, lookup: str, value: str, request: Any = None) -> bool:
        # The drill-down from a person's coin account lists their messages.
        return lookup == "conversation__owner__id__exact" or super().lookup_allowed(
            lookup, value, request
        )
