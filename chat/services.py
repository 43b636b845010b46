"""Writes. Each is one short sync transaction; async callers bridge with database_sync_to_async."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing import services as billing
from billing.services import Hold, Settlement
from chat import limits, selectors, tree
from chat.frames import AT_CURRENT_LEAF, RETRY_STATUSES
from chat.models import Conversation, Message
from chatsite import sql
from providers.base import ChatMessage
from providers.catalogue import ModelInfo
from providers.events import Usage


class ConversationNotFound(Exception):
    pass


class MessageNotFound(Exception):
    pass


class ReplyInProgress(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ReplyStart:
    assistant: Message
    history: list[ChatMessage]
    # The user's message (None for a retry, which reuses the history as it is).
    user_message: Message | None = None
    # True when this `client_id` was already sent: nothing new was started.
    duplicate: bool = False
    # The coins held for this attempt (None for BYOK), and its billing reference.
    hold: Hold | None = None
    reference: str = ""
    max_tokens: int = 0
    # A retry's earlier text, kept until the new attempt produces some (and if it never does).
    previous_content: str = ""
    previous_thinking: str = ""
    # The other hubs (worker processes) with tabs on the conversation, to tell of the reply,
    # and those with any tab of the person, to tell of the balance it leaves.
    other_hubs: tuple[str, ...] = ()
    person_hubs: tuple[str, ...] = ()
    # The conversation has a title: no reply needs to name it.
    titled: bool = True


def conversation_lock(*, owner_id: int, conversation_id: int) -> Conversation:
    """The conversation a reply is to start in, row-locked until the caller's transaction
    ends, if `owner_id` owns it (a foreign id is a missing one: ConversationNotFound). With
    only what a reply needs loaded (its owner and model)."""
    assert transaction.get_connection().in_atomic_block
    conversation = selectors.conversation_to_reply_in(
        owner_id=owner_id, conversation_id=conversation_id, lock=True
    )
    if conversation is None:
        raise ConversationNotFound()
    return conversation


def _hold(
    conversation: Conversation,
    assistant: Message,
    *,
    model: ModelInfo,
    byok: bool,
    max_tokens: int,
    hub: str,
) -> ReplyStart:
    """The conversation's model and branch, the history, the coin hold of a reply and the other
    hubs to tell of it, in its transaction (which holds the conversation's row lock: a socket
    opening meanwhile waits, then finds the reply streaming). The reply ends the conversation's
    current branch."""
    owner_id = conversation.owner_id
    if conversation.model != model.id:
        # A model the person picked replaces any note about a model the site replaced.
        conversation.model, conversation.model_note = model.id, ""
    Conversation.objects.filter(pk=conversation.pk).update(
        model=conversation.model,
        model_note=conversation.model_note,
        current_leaf_id=assistant.pk,
        updated_at=timezone.now(),
    )
    history = selectors.provider_history(conversation_id=conversation.pk, up_to=assistant.parent_id)
    reference = f"reply:{assistant.pk}:{uuid.uuid4().hex[:12]}"
    hold = None
    if not byok:
        hold = billing.reply_hold(
            user_id=owner_id,
            model=model,
            input_characters=sum(len(m.content) for m in history),
            max_tokens=max_tokens,
            reference=f"{reference}:hold",
            conversation_id=conversation.pk,
            message_id=assistant.pk,
        )
        max_tokens = hold.max_tokens
    showing, person_hubs = limits.hubs_of_person(
        user_id=owner_id, conversation_id=conversation.pk, besides=hub
    )
    return ReplyStart(
        assistant=assistant,
        history=history,
        hold=hold,
        reference=reference,
        max_tokens=max_tokens,
        other_hubs=tuple(showing),
        person_hubs=tuple(person_hubs),
        titled=conversation.title_by_person or conversation.title != Conversation.DEFAULT_TITLE,
    )


# The columns a person's message sets; the others are null. A test holds its row to the ORM's.
ASKED_COLUMNS = (
    "conversation_id", "parent_id", "role", "content", "thinking", "thinking_signature",
    "status", "model", "provider", "byok", "stop_reason", "error_code", "error_message",
    "client_id", "hub",
    "created_at", "updated_at", "unsettled",
)  # fmt: skip


@functools.cache
def _asked_insert() -> str:
    table = connection.ops.quote_name(Message._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(name) for name in ASKED_COLUMNS)
    # PostgreSQL and SQLite (3.35+) both take ON CONFLICT without a target, and RETURNING.
    return (
        f"INSERT INTO {table} ({columns}) "
        "VALUES (%s, %s, %s, %s, '', '', %s, '', '', %s, '', '', '', %s, '', %s, %s, %s) "
        "ON CONFLICT DO NOTHING RETURNING id"
    )


def user_message_if_new(
    *, conversation_id: int, parent_id: int | None, content: str, client_id: str
) -> Message | None:
    """Save a person's message after `parent_id`, unless its `client_id` was sent before (then
    nothing is written: None). One statement for its meaning (chatsite/sql.py): the unique
    constraint on client_id decides, whatever else runs meanwhile."""
    now = sql.now()
    role, status = Message.Role.USER, Message.Status.COMPLETE
    params = [conversation_id, parent_id, role, content, status, False, client_id, now, now, False]
    row = sql.one(_asked_insert(), params)
    if row is None:
        return None
    return Message(
        pk=row[0],
        conversation_id=conversation_id,
        parent_id=parent_id,
        role=role,
        content=content,
        client_id=client_id,
    )


def conversation_create(*, owner_id: int, model: str | None = None) -> Conversation:
    return Conversation.objects.create(owner_id=owner_id, model=model or settings.DEFAULT_MODEL)


class TooManyConversations(Exception):
    pass


@transaction.atomic
def conversation_start(*, owner_id: int) -> Conversation:
    """The conversation "New chat" opens: the person's newest one with no message yet if there
    is one, else a new one, within the per-person cap and rate (TooManyConversations says why
    not, for a person)."""
    empty = (
        Conversation.objects.filter(owner_id=owner_id, messages__isnull=True)
        .order_by("-id")
        .first()
    )
    if empty is not None:
        return empty
    cap = settings.CONVERSATIONS_PER_PERSON
    if Conversation.objects.filter(owner_id=owner_id).count() >= cap:
        raise TooManyConversations(
            f"You have {cap} conversations, the most this site keeps for one person. "
            "Go on in one of them."
        )
    wait = limits.action_wait(
        user_id=owner_id, action="conversation", limit=settings.NEW_CONVERSATIONS_PER_MINUTE
    )
    if wait is not None:
        raise TooManyConversations(
            f"That is a lot of new chats in a minute. Try again in {wait:.0f} s."
        )
    return conversation_create(owner_id=owner_id)


def _message_in(conversation: Conversation, message_id: int, role: str | None = None) -> Message:
    """One of the conversation's messages (of `role`, if given); MessageNotFound otherwise,
    whatever the id names elsewhere."""
    found = conversation.messages.filter(pk=message_id)
    if role is not None:
        found = found.filter(role=role)
    message = found.only("id", "parent_id", "role", "status").first()
    if message is None:
        raise MessageNotFound()
    return message


def _parent_of_new(conversation: Conversation, parent_id: int | None) -> int | None:
    if parent_id == AT_CURRENT_LEAF:
        return conversation.current_leaf_id
    if parent_id is None:
        return None
    return _message_in(conversation, parent_id).pk


def _reply_after(
    conversation: Conversation,
    parent_id: int | None,
    model: ModelInfo,
    byok: bool,
    max_tokens: int,
    hub: str,
) -> ReplyStart:
    """A new reply's row while it streams, run by `hub`, after `parent_id`, and its hold. A
    reply still streaming in the conversation makes its insert fail (a constraint): the
    callers' ReplyInProgress."""
    assistant = Message.objects.create(
        conversation_id=conversation.pk,
        parent_id=parent_id,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model=model.id,
        provider=model.provider,
        byok=byok,
        heartbeat_at=timezone.now(),
        hub=hub,
    )
    return _hold(conversation, assistant, model=model, byok=byok, max_tokens=max_tokens, hub=hub)


def reply_begin(
    *,
    conversation: Conversation,
    content: str,
    client_id: str | None,
    model: ModelInfo,
    byok: bool,
    max_tokens: int,
    hub: str,
    parent_id: int | None = AT_CURRENT_LEAF,
) -> ReplyStart:
    """Save the person's message after `parent_id` (None: as a first message; by default after
    the end of the current branch) and a streaming placeholder run by `hub`, and hold the
    reply's coins. An edit is a send after the edited message's parent: its sibling.

    In the caller's transaction, with `conversation` locked by `conversation_lock`: a refusal
    (`InsufficientCoins`, `ReplyInProgress`, `MessageNotFound` for a parent that is not the
    conversation's) leaves the transaction to be undone, so nothing is written.
    """
    try:
        with transaction.atomic(savepoint=False):
            parent = _parent_of_new(conversation, parent_id)
            # A resent send (the same client_id) writes nothing new.
            user_message = user_message_if_new(
                conversation_id=conversation.pk,
                parent_id=parent,
                content=content,
                client_id=client_id or "",
            )
            if user_message is None:
                return _sent_before(conversation, client_id or "")
            # A reply still streaming makes the reply's insert fail (a constraint):
            # ReplyInProgress below, and the transaction with the person's message undone.
            start = _reply_after(conversation, user_message.pk, model, byok, max_tokens, hub)
    except IntegrityError:
        # Another worker won the race for this conversation's one streaming slot.
        raise ReplyInProgress() from None
    return dataclasses.replace(start, user_message=user_message)


def reply_begin_edit(
    *,
    conversation: Conversation,
    message_id: int,
    content: str,
    client_id: str | None,
    model: ModelInfo,
    byok: bool,
    max_tokens: int,
    hub: str,
) -> ReplyStart:
    """A new version of the person's message `message_id` (its sibling: the old one and
    everything after it are kept) and a reply to it, as `reply_begin`."""
    edited = _message_in(conversation, message_id, Message.Role.USER)
    return reply_begin(
        conversation=conversation,
        content=content,
        client_id=client_id,
        model=model,
        byok=byok,
        max_tokens=max_tokens,
        hub=hub,
        parent_id=edited.parent_id,
    )


@transaction.atomic
def branch_select(*, owner_id: int, conversation_id: int, message_id: int) -> list[int]:
    """Make the branch through `message_id` the conversation's current one, down to that
    message's latest continuation (chat/tree.py); its ids from the root. A foreign or missing
    conversation or message: ConversationNotFound, MessageNotFound."""
    conversation = conversation_lock(owner_id=owner_id, conversation_id=conversation_id)
    parents = selectors.tree(conversation_id=conversation.pk)
    try:
        leaf = tree.leaf_under(parents, message_id)
    except tree.NotInTree:
        raise MessageNotFound() from None
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf_id=leaf)
    return tree.path_to(parents, leaf)


def _sent_before(conversation: Conversation, client_id: str) -> ReplyStart:
    """What a resent send is answered with: the message as first sent and its reply."""
    sent = conversation.messages.get(role=Message.Role.USER, client_id=client_id)
    reply = sent.children.order_by("id").first()
    if reply is None:  # its reply was never saved: not a send to start again either
        raise ReplyInProgress()
    return ReplyStart(assistant=reply, history=[], user_message=sent, duplicate=True)


def reply_begin_regenerate(
    *,
    conversation: Conversation,
    message_id: int,
    model: ModelInfo,
    byok: bool,
    max_tokens: int,
    hub: str,
) -> ReplyStart:
    """Start a new reply beside the reply `message_id` (its sibling: the old one is kept), run
    by `hub`, as `reply_begin`."""
    try:
        with transaction.atomic(savepoint=False):
            beside = _message_in(conversation, message_id, Message.Role.ASSISTANT)
            if beside.status == Message.Status.STREAMING:
                raise ReplyInProgress()
            return _reply_after(conversation, beside.parent_id, model, byok, max_tokens, hub)
    except IntegrityError:
        raise ReplyInProgress() from None


def reply_begin_retry(
    *,
    conversation: Conversation,
    message_id: int,
    model: ModelInfo,
    byok: bool,
    max_tokens: int,
    hub: str,
) -> ReplyStart:
    """Start a new attempt at a reply that ended without completing and that nothing follows
    yet (it is replaced in place: no message depends on it), run by `hub`. In the caller's
    transaction, with `conversation` locked by `conversation_lock`, as `reply_begin`."""
    try:
        with transaction.atomic(savepoint=False):
            last = conversation.messages.filter(pk=message_id, role=Message.Role.ASSISTANT).first()
            if last is None or last.children.exists():
                raise MessageNotFound()
            if last.status not in RETRY_STATUSES:
                if last.status == Message.Status.STREAMING:
                    raise ReplyInProgress()
                raise MessageNotFound()
            last.status = Message.Status.STREAMING
            last.stop_reason = last.error_code = last.error_message = ""
            last.model, last.provider, last.byok = model.id, model.provider, byok
            last.heartbeat_at = timezone.now()
            last.hub = hub
            last.save()
            start = _hold(
                conversation,
                last,
                model=model,
                byok=byok,
                max_tokens=max_tokens,
                hub=hub,
            )
            return dataclasses.replace(
                start, previous_content=last.content, previous_thinking=last.thinking
            )
    except IntegrityError:
        raise ReplyInProgress() from None


def reply_checkpoint(*, rows: Sequence[tuple[int, str, str]]) -> None:
    """Save partial text of many streaming replies in one batch, and touch their heartbeat.

    One UPDATE run for every row (`executemany`: one round trip with psycopg's pipeline), not
    `bulk_update`, whose CASE per column and row grows with the replies and runs every tick
    (docs/benchmarks.md, "Checkpoints"). Only rows still streaming: a late checkpoint must
    never overwrite a finished reply.
    """
    if not rows:
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    table = connection.ops.quote_name(Message._meta.db_table)
    update = (
        f"UPDATE {table} SET content = %s, thinking = %s, heartbeat_at = %s, updated_at = %s "
        "WHERE id = %s AND status = %s"
    )
    streaming = Message.Status.STREAMING.value
    with connection.cursor() as cursor:
        cursor.executemany(
            update,
            [(content, thinking, now, now, pk, streaming) for pk, content, thinking in rows],
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the runner knows about one provider attempt when it ends."""

    owner_id: int
    conversation_id: int
    message_id: int
    model: ModelInfo
    byok: bool
    hold: Hold | None
    reference: str
    attempt: int
    usage: Usage
    usage_estimated: bool
    time_to_first_token_ms: int | None
    duration_ms: int
    # The round of the reply's tool loop (chat/tool_loop.py) this call was.
    round: int = 1
    # Whether the call itself ended well (a round that asked for tools, then stopped while
    # they ran, was an `ok` call of a stopped reply).
    call_ended: bool = False


# The LlmUsage status of a reply's ending.
USAGE_STATUS: dict[str, str] = {
    Message.Status.COMPLETE: "ok",
    Message.Status.ERROR: "error",
    Message.Status.STOPPED: "stopped",
    Message.Status.INTERRUPTED: "interrupted",
}


def reply_save_and_settle(
    *, text: tuple[int, str, str], attempt: Attempt, **ending: Any
) -> Settlement:
    """A reply's text saved on its own (its own statement: whatever becomes of the settle, what
    the person saw is kept), then `reply_settle`; one trip to the database thread."""
    reply_checkpoint(rows=[text])
    return reply_settle(attempt=attempt, **ending)


@transaction.atomic
def reply_settle(
    *,
    attempt: Attempt,
    status: str,
    content: str,
    thinking: str,
    thinking_signature: str = "",
    stop_reason: str = "",
    error_code: str = "",
    error_message: str = "",
    tools: list[dict[str, Any]] | None = None,
    totals: Usage | None = None,
    bill: bool = True,
) -> Settlement:
    """End a reply: its final text, its bill (capture and release) and its LlmUsage row, at once.
    `totals`: the tokens of all its rounds (its tool loop), shown under it; `bill` False: its
    last call was billed already (chat/tool_loop.py), only its ending is written.

    Only a reply still streaming is ended: one the sweep already found interrupted keeps that
    ending (and its bill), so a reply is never settled twice.
    """
    ended = reply_finish(
        message_id=attempt.message_id,
        status=status,
        content=content,
        thinking=thinking,
        thinking_signature=thinking_signature,
        stop_reason=stop_reason,
        error_code=error_code,
        error_message=error_message,
        usage=totals or attempt.usage,
        tools=tools,
    )
    if not ended or not bill:
        return Settlement(
            coins_charged=0,
            balance=billing.balance_of(user_id=attempt.owner_id),
            cost_usd=Decimal(0),
        )
    call_status = "ok" if attempt.call_ended else USAGE_STATUS.get(status, "error")
    return _bill_call(attempt, status=call_status, error_code=error_code)


def _bill_call(attempt: Attempt, *, status: str, error_code: str = "") -> Settlement:
    """One provider call's bill (capture and release of its hold) and LlmUsage row."""
    settlement = billing.reply_settle(
        user_id=attempt.owner_id,
        model=attempt.model,
        usage=attempt.usage,
        hold=attempt.hold,
        reference=attempt.reference,
        conversation_id=attempt.conversation_id,
        message_id=attempt.message_id,
    )
    billing.usage_record(
        usage=attempt.usage,
        user_id=attempt.owner_id,
        conversation_id=attempt.conversation_id,
        message_id=attempt.message_id,
        provider=attempt.model.provider,
        model=attempt.model.id,
        byok=attempt.byok,
        status=status,
        error_code=error_code,
        attempt=attempt.attempt,
        round=attempt.round,
        usage_estimated=attempt.usage_estimated,
        time_to_first_token_ms=attempt.time_to_first_token_ms,
        duration_ms=attempt.duration_ms,
        cost_usd=settlement.cost_usd,
        coins_charged=settlement.coins_charged,
    )
    return settlement


@dataclass(frozen=True, slots=True)
class NextRound:
    """A tool round's bill (its balance: after the charge, before the next hold), and the hold
    of the round after it (None: BYOK, or the balance could not pay for it: `refused` then
    says why)."""

    settlement: Settlement
    hold: Hold | None
    reference: str
    max_tokens: int
    refused: str = ""


@transaction.atomic
def reply_round_next(
    *,
    attempt: Attempt,
    text: tuple[int, str, str],
    tools: list[dict[str, Any]],
    input_characters: int,
    max_tokens: int,
) -> NextRound:
    """Between two rounds of a reply's tool loop (chat/tool_loop.py): the round that asked for
    tools is billed and recorded (an `ok` call), the reply's text and calls are saved, and the
    next round's coins are held, all in one transaction. If the balance cannot pay for another
    round, the bill stands and nothing is held."""
    reply_checkpoint(rows=[text])
    reply_tools_save(message_id=attempt.message_id, tools=tools)
    settlement = _bill_call(attempt, status="ok")
    reference = f"reply:{attempt.message_id}:{uuid.uuid4().hex[:12]}"
    if attempt.byok:
        return NextRound(settlement, None, reference, max_tokens)
    try:
        with transaction.atomic():
            hold = billing.reply_hold(
                user_id=attempt.owner_id,
                model=attempt.model,
                input_characters=input_characters,
                max_tokens=max_tokens,
                reference=f"{reference}:hold",
                conversation_id=attempt.conversation_id,
                message_id=attempt.message_id,
            )
    except billing.InsufficientCoins as refused:
        return NextRound(settlement, None, reference, 0, refused.message)
    # The balance the person is shown is the round's bill's: the next hold is not spent.
    return NextRound(settlement, hold, reference, hold.max_tokens)


def reply_tools_save(*, message_id: int, tools: list[dict[str, Any]]) -> None:
    """A streaming reply's tool calls as they are now (asked for, or run)."""
    Message.objects.filter(pk=message_id, status=Message.Status.STREAMING).update(tools=tools)


def reply_finish(
    *,
    message_id: int,
    status: str,
    content: str,
    thinking: str,
    thinking_signature: str = "",
    stop_reason: str = "",
    error_code: str = "",
    error_message: str = "",
    usage: Usage | None = None,
    unsettled: bool = False,
    tools: list[dict[str, Any]] | None = None,
) -> bool:
    """Write a streaming reply's ending; False if it had already ended. `unsettled`: its bill
    could not be written (chat/settlement.py), for the sweep to settle again."""
    # Its calls as they ended (None: as last saved).
    calls = {} if tools is None else {"tools": tools or None}
    ended = Message.objects.filter(pk=message_id, status=Message.Status.STREAMING).update(
        **calls,
        unsettled=unsettled,
        status=status,
        content=content,
        thinking=thinking,
        thinking_signature=thinking_signature,
        stop_reason=stop_reason,
        error_code=error_code,
        error_message=error_message,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        heartbeat_at=None,
        updated_at=timezone.now(),
    )
    return bool(ended)
