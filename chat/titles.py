"""Conversation titles: after the first reply, one short non-streaming call names the conversation.

It is written by the provider's title model (the catalogue's TITLE_MODELS: its cheapest capable
one) through the reply's own provider resolution (the person's key wins), holds and captures
coins like a reply, and leaves an LlmUsage row marked `title` beside the reply it followed
(`message_id`), where the page shows its cost. A failure of any kind keeps the default title
and bothers nobody: it is logged, never shown.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass, replace

from channels.db import database_sync_to_async
from django.db import transaction

from billing import services as billing
from billing.models import LlmUsage
from chat import frames, tracing
from chat.frames import clean_text
from chat.hub import Hub
from chat.models import Conversation
from chat.settlement import SETTLE_RETRY_WAITS, tried
from providers.base import ChatMessage, ChatRequest, Completion
from providers.catalogue import ModelInfo, title_model
from providers.errors import ProviderError
from providers.events import Usage
from providers.resolution import Resolved

logger = logging.getLogger(__name__)

DEFAULT_TITLE = Conversation.DEFAULT_TITLE
TITLE_MAX_TOKENS = 40
# Models that always reason first spend output tokens on it: they get room for it.
REASONING_TITLE_MAX_TOKENS = 1_024
TITLE_MAX_CHARS = 80
TITLE_TIMEOUT = 30.0
# What the model sees of the exchange: enough to name it, never a long prompt.
EXCERPT_CHARS = 2_000
INSTRUCTION = (
    "Write a short title (at most six words) for the conversation above, in its language. "
    "Reply with the title only: no quotes, no final punctuation."
)

# Quotes and markdown a model may wrap a title in (curly ones written as escapes).
_QUOTES = "\"'`*#\u201c\u201d\u2018\u2019\u00ab\u00bb"


class _Skip(Exception):
    """The conversation already has a title, or the balance cannot pay for one."""


@dataclass(frozen=True, slots=True)
class _Begun:
    hold: billing.Hold | None
    reference: str


def clean_title(text: str) -> str:
    """One line, no quotes or markdown around it, at most TITLE_MAX_CHARS; '' if nothing is left."""
    line = next((part for part in clean_text(text).splitlines() if part.strip()), "")
    line = re.sub(r"^\s*(title\s*:)\s*", "", line, flags=re.IGNORECASE)
    line = " ".join(line.split()).strip(_QUOTES + " ").rstrip(".").strip(_QUOTES + " ")
    if len(line) > TITLE_MAX_CHARS:
        line = line[: TITLE_MAX_CHARS - 1].rstrip() + "…"
    return line


def title_request(model: ModelInfo, question: str, answer: str) -> ChatRequest:
    return ChatRequest(
        model=model.id,
        messages=[
            ChatMessage("user", question[:EXCERPT_CHARS]),
            ChatMessage("assistant", answer[:EXCERPT_CHARS]),
            ChatMessage("user", INSTRUCTION),
        ],
        max_tokens=REASONING_TITLE_MAX_TOKENS if model.always_reasons else TITLE_MAX_TOKENS,
        thinking=False,
    )


@transaction.atomic
def _title_begin(
    *,
    owner_id: int,
    conversation_id: int,
    message_id: int,
    resolved: Resolved,
    request: ChatRequest,
) -> _Begun:
    conversation = (
        Conversation.objects.select_for_update()
        .filter(pk=conversation_id, owner_id=owner_id, deleted_at__isnull=True)
        .first()
    )
    if conversation is None or conversation.title_by_person or conversation.title != DEFAULT_TITLE:
        raise _Skip()
    reference = f"title:{conversation_id}:{uuid.uuid4().hex[:12]}"
    if resolved.credentials.byok:
        return _Begun(hold=None, reference=reference)
    try:
        hold = billing.reply_hold(
            user_id=owner_id,
            model=resolved.model,
            input_characters=sum(len(m.content) for m in request.messages),
            max_tokens=request.max_tokens,
            reference=f"{reference}:hold",
            conversation_id=conversation_id,
            message_id=message_id,
            purpose="Title",
        )
    except billing.InsufficientCoins:
        raise _Skip() from None
    return _Begun(hold=hold, reference=reference)


@dataclass(frozen=True, slots=True)
class _Settled:
    saved: bool
    settlement: billing.Settlement


@transaction.atomic
def _title_settle(
    *,
    owner_id: int,
    conversation_id: int,
    message_id: int,
    resolved: Resolved,
    begun: _Begun,
    title: str,
    usage: Usage,
    error_code: str,
    duration_ms: int,
) -> _Settled:
    """Save the title (only over the default one: never over the person's own, even if they
    named it "New chat" meanwhile), bill the call and record it."""
    saved = bool(title) and bool(
        Conversation.objects.filter(
            pk=conversation_id, owner_id=owner_id, title=DEFAULT_TITLE, title_by_person=False
        ).update(title=title)
    )
    settlement = billing.reply_settle(
        user_id=owner_id,
        model=resolved.model,
        usage=usage,
        hold=begun.hold,
        reference=begun.reference,
        conversation_id=conversation_id,
        message_id=message_id,
        purpose="Title",
    )
    billing.usage_record(
        usage=usage,
        user_id=owner_id,
        conversation_id=conversation_id,
        message_id=message_id,
        provider=resolved.model.provider,
        model=resolved.model.id,
        byok=resolved.credentials.byok,
        purpose=LlmUsage.Purpose.TITLE,
        status="error" if error_code else "ok",
        error_code=error_code,
        duration_ms=duration_ms,
        cost_usd=settlement.cost_usd,
        coins_charged=settlement.coins_charged,
    )
    return _Settled(saved=saved, settlement=settlement)


def title_resolutions(resolved: Resolved) -> list[Resolved]:
    """Who writes the title, in order: the provider's title model (the catalogue's
    TITLE_MODELS), then, if that one cannot be reached with this key, the reply's own model.
    The same provider, adapter and key either way."""
    cheaper = title_model(resolved.model)
    if cheaper.id == resolved.model.id:
        return [resolved]
    return [replace(resolved, model=cheaper), resolved]


async def name_conversation(
    *,
    hub: Hub,
    owner_id: int,
    conversation_id: int,
    message_id: int,
    resolved: Resolved,
    question: str,
    answer: str,
) -> str | None:
    """Name the conversation from its first exchange (`message_id` is its first reply); the
    new title, or None (default kept). Every tab of the person hears the new balance; the tabs
    on the conversation hear the title and what it cost."""
    for candidate in title_resolutions(resolved):
        request = title_request(candidate.model, question, answer)
        try:
            begun = await database_sync_to_async(_title_begin)(
                owner_id=owner_id,
                conversation_id=conversation_id,
                message_id=message_id,
                resolved=candidate,
                request=request,
            )
        except _Skip:
            return None
        title, error_code, settled, usage = await _call_and_settle(
            owner_id, conversation_id, message_id, candidate, request, begun
        )
        if settled is None:
            return None
        if settled.saved:
            await hub.announce(
                conversation_id,
                frames.conversation_title(
                    conversation_id=conversation_id,
                    title=title,
                    charge=_charge(message_id, candidate, usage, settled.settlement),
                ),
            )
        if settled.settlement.coins_charged:
            # The person's other tabs (those on this conversation heard it with the title).
            await hub.tell_person(
                owner_id,
                frames.balance(balance=settled.settlement.balance),
                besides=conversation_id if settled.saved else None,
            )
        if settled.saved:
            return title
        if error_code not in _TRY_THE_REPLY_MODEL:
            return None
    return None


# A title model this key cannot use (an OpenAI project without it, an OpenRouter key limited
# to some models): the reply's own model writes the title instead.
_TRY_THE_REPLY_MODEL = frozenset({"not_found", "permission"})


async def _call_and_settle(
    owner_id: int,
    conversation_id: int,
    message_id: int,
    resolved: Resolved,
    request: ChatRequest,
    begun: _Begun,
) -> tuple[str, str, _Settled | None, Usage]:
    """One title call, billed and recorded: (title, error code, settled or None, usage)."""
    started = time.monotonic()
    completion, error_code = Completion(text="", usage=Usage()), ""
    span = tracing.title_started(resolved.model, request, conversation_id)
    try:
        with tracing.current(span):
            completion = await asyncio.wait_for(
                resolved.adapter.complete(request, resolved.credentials), TITLE_TIMEOUT
            )
    except ProviderError as exc:
        error_code = exc.code
    except TimeoutError:
        error_code = "timeout"
    except Exception:
        logger.exception("the title call for conversation %s failed", conversation_id)
        error_code = "provider_error"
    if error_code:
        logger.info(
            "no title from %s for conversation %s: %s",
            resolved.model.id,
            conversation_id,
            error_code,
        )
    title = clean_title(completion.text)
    tracing.title_ended(span, resolved.model, completion.usage, error_code, title)
    # Tried again like a reply's settle; if it never succeeds, its hold stays open, and
    # `reconcile_coins` lists it.
    settled = await tried(
        f"settle the title call of conversation {conversation_id}",
        SETTLE_RETRY_WAITS,
        _title_settle,
        owner_id=owner_id,
        conversation_id=conversation_id,
        message_id=message_id,
        resolved=resolved,
        begun=begun,
        title=title,
        usage=completion.usage,
        error_code=error_code,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    return title, error_code, settled, completion.usage


def _charge(
    message_id: int, resolved: Resolved, usage: Usage, settlement: billing.Settlement
) -> dict[str, object]:
    return {
        "message_id": message_id,
        "model": resolved.model.id,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        "provider": resolved.model.provider,
        "byok": resolved.credentials.byok,
        "coins_charged": settlement.coins_charged,
        "balance": settlement.balance,
    }
