"""Search over a person's own conversations: their titles and their messages' text.

PostgreSQL: full-text search (`django.contrib.postgres.search`) with the `simple`
configuration (no stemming: it serves every language the same, and finds what was typed), on
GIN indexes of the two expressions (chat migration 0008). SQLite, the embedded default: each
word is looked for with LIKE, then kept only as a whole word, as PostgreSQL's tokens are; for
plain words both give the same results. Every term is a query parameter, never SQL.

A result is a conversation (newest first) with its newest matching message, if a message
matched: a snippet around the first word found, the words marked. It opens at that message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from chat.models import Conversation, Message

CONFIG = "simple"
# What is read of a query: enough for any real search, never a long prompt.
MAX_WORDS = 12
MAX_WORD_CHARS = 60
# Conversations shown, and matching messages read to find them (newest first).
MAX_RESULTS = 50
MESSAGES_READ = 400
SNIPPET_CHARS = 160

# Letters and digits: what PostgreSQL's parser makes words of (an underscore separates them).
_NOTHING = mark_safe("")
_WORD = re.compile(r"[^\W_]+")


def words_of(query: str) -> list[str]:
    """The words searched for: letters and digits, lower case, each once, in order."""
    found: list[str] = []
    for word in _WORD.findall(query.casefold()):
        word = word[:MAX_WORD_CHARS]
        if word not in found:
            found.append(word)
        if len(found) == MAX_WORDS:
            break
    return found


@dataclass(frozen=True, slots=True)
class Result:
    conversation: Conversation
    title: SafeString  # escaped, with the words marked
    message_id: int | None = None
    role: str = ""
    snippet: SafeString = _NOTHING


@dataclass(frozen=True, slots=True)
class Found:
    results: list[Result]
    # Only the most recent matches were read: older conversations may match too.
    more: bool = False


def search(*, owner_id: int, query: str) -> Found:
    """The person's conversations whose title, or one of whose messages, holds every word of
    the query: the most recently active first, at most MAX_RESULTS, each with its newest
    matching message (read from the newest MESSAGES_READ matches)."""
    words = words_of(query)
    if not words:
        return Found(results=[])
    titled = list(_title_matches(owner_id, words)[:MAX_RESULTS])
    newest: dict[int, Message] = {}
    read = list(_message_matches(owner_id, words)[:MESSAGES_READ])
    for message in read:
        if _all_whole(words, message.content):
            newest.setdefault(message.conversation_id, message)
    conversations = {c.pk: c for c in titled if _all_whole(words, c.title)}
    missing = set(newest) - set(conversations)
    if missing:
        conversations.update(Conversation.objects.in_bulk(missing))
    ordered = sorted(conversations.values(), key=lambda c: (c.updated_at, c.pk), reverse=True)
    results = []
    for conversation in ordered[:MAX_RESULTS]:
        hit = newest.get(conversation.pk)
        results.append(
            Result(
                conversation=conversation,
                title=mark(conversation.title, words),
                message_id=hit.pk if hit else None,
                role=hit.role if hit else "",
                snippet=snippet(hit.content, words) if hit else _NOTHING,
            )
        )
    more = len(read) == MESSAGES_READ or len(titled) == MAX_RESULTS or len(ordered) > MAX_RESULTS
    return Found(results=results, more=more)


def _owned(owner_id: int) -> Q:
    return Q(owner_id=owner_id, deleted_at__isnull=True)


def _title_matches(owner_id: int, words: list[str]) -> QuerySet[Conversation]:
    found = Conversation.objects.filter(_owned(owner_id), current_leaf__isnull=False)
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        found = found.annotate(found=SearchVector("title", config=CONFIG)).filter(
            found=SearchQuery(" ".join(words), config=CONFIG, search_type="plain")
        )
    else:
        for word in words:
            found = found.filter(title__icontains=word)
    return found.order_by("-updated_at", "-id")


def _message_matches(owner_id: int, words: list[str]) -> QuerySet[Message]:
    found = Message.objects.filter(
        conversation__owner_id=owner_id, conversation__deleted_at__isnull=True
    ).only("id", "conversation_id", "role", "content")
    if connection.vendor == "postgresql":
        # The stored `tsvector` of the text (chat migration 0008), not a new one per row.
        table = connection.ops.quote_name(Message._meta.db_table)
        found = found.filter(
            RawSQL(
                f"{table}.search_vector @@ plainto_tsquery(%s::regconfig, %s)",
                [CONFIG, " ".join(words)],
                output_field=BooleanField(),
            )
        )
    else:
        for word in words:
            found = found.filter(content__icontains=word)
    return found.order_by("-id")


def _pattern(words: list[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)


def _all_whole(words: list[str], text: str) -> bool:
    """Every word is in the text as a whole word (PostgreSQL's tokens; LIKE finds parts)."""
    found = {m.group(0).casefold() for m in _pattern(words).finditer(text)}
    return all(word in found for word in words)


def mark(text: str, words: list[str]) -> SafeString:
    """The text escaped, each whole word searched for in <mark>."""
    out, at = [], 0
    for match in _pattern(words).finditer(text):
        out += [escape(text[at : match.start()]), f"<mark>{escape(match.group(0))}</mark>"]
        at = match.end()
    out.append(escape(text[at:]))
    return mark_safe("".join(out))


def snippet(text: str, words: list[str]) -> SafeString:
    """About SNIPPET_CHARS of the text around the first word found, on one line, marked."""
    flat = " ".join(text.split())
    first = _pattern(words).search(flat)
    start = 0 if first is None else max(0, first.start() - SNIPPET_CHARS // 3)
    if start:
        # From the start of a word.
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < (first.start() if first else start) else start
    piece = flat[start : start + SNIPPET_CHARS]
    prefix = "…" if start else ""
    suffix = "…" if start + SNIPPET_CHARS < len(flat) else ""
    return mark_safe(prefix + mark(piece, words) + suffix)
