from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Conversation(models.Model):
    DEFAULT_TITLE = "New chat"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, default=DEFAULT_TITLE)
    # The person named it: automatic titles never replace theirs.
    title_by_person = models.BooleanField(default=False)
    # The person's switch: may the models use the site's tools here (tools/)?
    tools_enabled = models.BooleanField(default=True)
    model = models.CharField(max_length=100)
    # Shown on the page when the site changed the model (its model was retired).
    model_note = models.CharField(max_length=300, blank=True)
    # The end of the branch the page shows and a new message follows (chat/tree.py); null
    # until the first message.
    current_leaf = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Deleted by the person: gone for them at once (every read of theirs leaves it out); its
    # rows go as soon as no reply of it is being written (chat/conversations.py).
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-updated_at"]),
            models.Index(
                fields=["deleted_at"], condition=Q(deleted_at__isnull=False), name="deleted"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        STREAMING = "streaming"
        COMPLETE = "complete"
        ERROR = "error"
        STOPPED = "stopped"
        INTERRUPTED = "interrupted"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # The message this one follows (null: the first of a branch). Messages form a tree: a
    # regenerated reply or an edited message is a sibling of the one it replaces.
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    thinking = models.TextField(blank=True)
    # The provider's signatures of the thinking blocks: kept server-side, never shown.
    thinking_signature = models.TextField(blank=True)
    # A reply's tool calls, in order (chat/tool_loop.py): each its call id, tool name, input,
    # `offset` in the text where it was asked for, round, and `result` once it ran. Null: none.
    tools = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.COMPLETE)
    model = models.CharField(max_length=100, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    byok = models.BooleanField(default=False)
    stop_reason = models.CharField(max_length=30, blank=True)
    error_code = models.CharField(max_length=30, blank=True)
    error_message = models.TextField(blank=True)
    # Set by the browser on a user message so that a resent `send` starts one reply, not two.
    client_id = models.CharField(max_length=64, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Touched by the runner's checkpoints; a streaming reply with a stale one has lost its process.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # While it streams: the channel of the hub (worker process) running it, where other
    # workers send their requests to watch or stop it.
    hub = models.CharField(max_length=200, blank=True)
    # Ended with its text, but its bill (and its LlmUsage row) could not be written: every
    # worker's sweep settles it again, `reconcile_coins` lists it, the admin filters on it.
    unsettled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["unsettled"], condition=Q(unsettled=True), name="unsettled_replies"
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(status="streaming"),
                name="one_streaming_reply_per_conversation",
            ),
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=Q(role="user") & ~Q(client_id=""),
                name="one_send_per_client_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.pk} ({self.status})"


class RateWindow(models.Model):
    """How many paid actions (sends, retries) a person made in one minute; shared by every
    worker (the database is the store), counted with one atomic upsert (chat/limits.py)."""

    user_id = models.BigIntegerField()
    action = models.CharField(max_length=20)
    # Minutes since the epoch.
    minute = models.BigIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_id", "action", "minute"], name="one_rate_window")
        ]

    def __str__(self) -> str:
        return f"{self.action} x{self.count} by person {self.user_id} in minute {self.minute}"


class OpenSocket(models.Model):
    """One open websocket: for the per-person limit across workers, and for a reply starting
    on one worker to find the other workers with tabs on its conversation. Its worker's hub
    renews `seen_at` while it runs; rows of a worker that died go stale and stop counting."""

    user_id = models.BigIntegerField(db_index=True)
    hub = models.CharField(max_length=200, db_index=True)
    # Null only for rows from before this column: they expire with their lease.
    conversation_id = models.BigIntegerField(null=True, db_index=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"socket of person {self.user_id} on {self.hub}"
