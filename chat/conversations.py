"""Managing conversations: the person's list (newest first, by pages), renaming, deleting.

A conversation is listed once it has a message (`current_leaf` is set with the first reply's
start); the empty ones "New chat" leaves behind are removed by the workers' sweep
(`maintenance.empty_conversations_remove`). Deleting one removes its text (its messages) and
leaves every coin and usage number: `LlmUsage` and ledger rows refer to it by id only, and
keep their figures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from chat import frames, relay, selectors
from chat.frames import clean_text
from chat.models import Conversation
from chat.services import ConversationNotFound, conversation_lock

TITLE_MAX_CHARS = Conversation._meta.get_field("title").max_length or 200
PAGE_SIZE = 50


class BadTitle(ValueError):
    """A title the person cannot have; the text says why."""


def listed(*, owner_id: int) -> QuerySet[Conversation]:
    """The person's conversations that have a message, newest first."""
    return Conversation.objects.filter(
        owner_id=owner_id, current_leaf__isnull=False, deleted_at__isnull=True
    ).order_by("-updated_at", "-id")


@dataclass(frozen=True, slots=True)
class Page:
    conversations: list[Conversation]
    # Where the next page starts (the last one's `updated_at` and id), or None at the end.
    after: str | None


def page(*, owner_id: int, after: str | None = None, size: int = PAGE_SIZE) -> Page:
    """One page of the list, after a cursor from the page before: a keyset on the list's own
    order (`updated_at`, id), so page 100 costs what page 1 does and nothing repeats or is
    skipped when a conversation moves to the top meanwhile (it is on page 1 again)."""
    found = listed(owner_id=owner_id)
    if after:
        try:
            stamp, _, pk = after.rpartition("_")
            updated = dt.datetime.fromisoformat(stamp)
            found = found.filter(Q(updated_at__lt=updated) | Q(updated_at=updated, id__lt=int(pk)))
        except ValueError:
            found = found.none()  # a cursor the site did not write
    rows = list(found[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    cursor = f"{rows[-1].updated_at.isoformat()}_{rows[-1].pk}" if more else None
    return Page(conversations=rows, after=cursor)


def clean_title(raw: str) -> str:
    title = " ".join(clean_text(raw).split())
    if not title:
        raise BadTitle("A title needs at least one letter or digit.")
    if len(title) > TITLE_MAX_CHARS:
        raise BadTitle(f"A title has at most {TITLE_MAX_CHARS} characters.")
    return title


def rename(*, owner_id: int, conversation_id: int, title: str) -> str:
    """The person's own title: kept over any automatic one, and every tab of theirs follows.
    A foreign or missing conversation: ConversationNotFound."""
    title = clean_title(title)
    renamed = Conversation.objects.filter(
        pk=conversation_id, owner_id=owner_id, deleted_at__isnull=True
    ).update(title=title, title_by_person=True)
    if not renamed:
        raise ConversationNotFound()
    _tell(owner_id, frames.conversation_title(conversation_id=conversation_id, title=title))
    return title


def tools_switch(*, owner_id: int, conversation_id: int, enabled: bool) -> None:
    """The person's switch for tools in this conversation (from its next reply on); every tab
    of theirs follows. A foreign or missing conversation: ConversationNotFound."""
    switched = Conversation.objects.filter(
        pk=conversation_id, owner_id=owner_id, deleted_at__isnull=True
    ).update(tools_enabled=enabled)
    if not switched:
        raise ConversationNotFound()
    _tell(owner_id, frames.conversation_tools(conversation_id=conversation_id, enabled=enabled))


def delete(*, owner_id: int, conversation_id: int) -> str:
    """Delete the conversation: gone for the person at once (pages, search, export, sockets
    and sends leave it out), every tab of theirs told. A reply being written is stopped
    first; its rows go when it has ended, saved and billed as any stopped reply (the runner
    removes them, or the sweep: `maintenance.deleted_conversations_remove`), otherwise now.
    Its title, for the person; ConversationNotFound for a foreign or missing one.

    Nothing here waits for the reply: a request's thread is the one where the database work of
    every socket runs (the stopped reply's own save among it)."""
    title, hub = _mark_deleted(owner_id=owner_id, conversation_id=conversation_id)
    if hub is not None:
        async_to_sync(relay.stop_on)(hub=hub, conversation_id=conversation_id)
    _tell(owner_id, frames.conversation_deleted(conversation_id=conversation_id))
    return title


@transaction.atomic
def _mark_deleted(*, owner_id: int, conversation_id: int) -> tuple[str, str | None]:
    """Its title, and the hub of its reply being written (None: it is removed now)."""
    # Locked as a reply's start locks it: none starts while it goes, nor after.
    conversation = conversation_lock(owner_id=owner_id, conversation_id=conversation_id)
    title = Conversation.objects.values_list("title", flat=True).get(pk=conversation.pk)
    Conversation.objects.filter(pk=conversation.pk).update(deleted_at=timezone.now())
    hub = selectors.reply_hub(conversation_id=conversation.pk)
    if hub is None:
        Conversation.objects.filter(pk=conversation.pk).delete()  # and its messages
    return title, hub


def tell_branch(owner_id: int, conversation_id: int, path: list[int]) -> None:
    """Every tab on the conversation follows a branch chosen by a page's request."""
    _tell(owner_id, frames.branch(conversation_id=conversation_id, path=path))


def _tell(owner_id: int, text: str) -> None:
    async_to_sync(relay.tell_person_everywhere)(user_id=owner_id, text=text)
