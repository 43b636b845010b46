"""The reply runner: provider stream -> sockets (chat/reply_delivery.py) -> checkpoints ->
final save (chat/settlement.py).

A reply runs as its own task, owned by the runner and not by any socket: closing every tab lets
it finish and be saved; `stop()` cancels the task reading the provider, which closes the
upstream HTTP stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from typing import Any, assert_never

from channels.db import database_sync_to_async
from django.conf import settings

from chat import (
    frames,
    maintenance,
    retry,
    services,
    settlement,
    shutdown,
    titles,
    tool_loop,
    tracing,
)
from chat.frames import clean_text
from chat.hub import Hub
from chat.models import Message
from chat.reply_delivery import Delivery
from chat.reply_text import ReplyText
from chatsite import logs, metrics
from providers.base import ChatRequest, ToolOutcome, ToolRound
from providers.errors import ProviderError, ProviderFailure, ProviderTimeout
from providers.events import (
    MessageStart,
    MessageStop,
    StopReason,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolCall,
    Usage,
    UsageUpdate,
)
from providers.resolution import Resolved
from tools import offer
from tools.registry import ToolResult

logger = logging.getLogger(__name__)

# A streaming reply whose text did not change still touches its heartbeat this often.
HEARTBEAT_INTERVAL = 10.0

_running: set[asyncio.Task[None]] = set()
_rng = random.Random()


class Reply:
    def __init__(
        self,
        *,
        hub: Hub,
        owner_id: int,
        conversation_id: int,
        resolved: Resolved,
        start: services.ReplyStart,
        attempt: int = 1,
        tool_setup: offer.Setup | None = None,
    ) -> None:
        self.hub = hub
        self.owner_id = owner_id
        self.conversation_id = conversation_id
        self.message_id = start.assistant.pk
        self.parent_id: int | None = start.assistant.parent_id
        # The conversation has a title already (named by a reply before, or by the person).
        self.titled = start.titled
        self.resolved = resolved
        self.request = ChatRequest(
            model=resolved.model.id, messages=start.history, max_tokens=start.max_tokens
        )
        self.hold = start.hold
        self.reference = start.reference
        self.previous = (start.previous_content, start.previous_thinking)
        self.attempt = attempt
        self.status: str = Message.Status.STREAMING
        self.text = ReplyText()
        self.thinking = ReplyText()
        self.usage = Usage()
        # Thinking blocks' signatures: saved with the message, never sent to a browser.
        self.signatures: list[str] = []
        # The provider's reason, or "tool_limit": the loop's last round asked for more tools.
        self.stop_reason: StopReason | str = "other"
        self.remote_watchers: set[str] = set()
        # The other workers' hubs with tabs on the conversation when the reply began.
        self.other_hubs = start.other_hubs
        # ... and with any tab of the person, and the balance this reply's bill left (None
        # unless it charged coins).
        self.person_hubs = start.person_hubs
        self.balance_after: int | None = None
        self.stop_requested = False
        # Its worker is shutting down (chat/shutdown.py): ended as interrupted, Retry offered.
        self.interrupted = False
        self.loop = asyncio.get_running_loop()
        self.task: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._delivery = Delivery(self)
        self._dirty = False
        self._last_checkpoint = self.loop.time()
        # Whether the provider sent its final usage, and the attempt's timings.
        self.final_usage = False
        self.started_at = self.began_at = self.loop.time()
        self.first_delta_at: float | None = None
        # What the reply charged in all (its rounds'), once settled.
        self.coins_charged = 0
        # Its trace (chat/tracing.py; None when no destination is configured): its span, and
        # the span of the provider call being read with the token that keeps it current.
        self.span: Any = None
        self.call_span: tuple[Any, object] | None = None
        # The tool loop (chat/tool_loop.py): what the admin and the person allow, the tools
        # offered, the rounds so far (each one provider call) and every call asked for.
        self.tool_setup = tool_setup
        self.toolbox: offer.Toolbox | None = None
        self.max_tokens = start.max_tokens
        self.history_characters = sum(len(m.content) for m in start.history)
        self.round = 1
        self.rounds: list[ToolRound] = []
        self.calls = tool_loop.Calls()
        self._round_start()
        # The tokens and coins of the rounds billed before the current one.
        self.earlier = Usage()
        self.earlier_coins = 0
        # The current round's call is still to be billed (not when the balance could not pay
        # for it: the reply ended before it began).
        self.call_open = True

    # --- what others read ----------------------------------------------------------------------

    def snapshot_frame(self) -> str:
        return frames.message_snapshot(
            message_id=self.message_id,
            content=self.text.value(),
            thinking=self.thinking.value(),
            status=self.status,
            tools=self.calls.value() if self.calls else None,
        )

    def add_remote_watcher(self, hub: str) -> None:
        """Another worker's tabs watch this reply: its snapshot goes first, then the frames that
        follow, in order (text taken after the snapshot but streamed before it overlaps it, and
        the page drops the overlap by offset)."""
        self.remote_watchers.add(hub)
        self.hub.relay(self, [self.snapshot_frame()], to=hub)

    def take_remote_frames(self) -> list[str]:
        """The deltas streamed since the last take, for the other workers' hubs."""
        return frames.deltas(self.message_id, self.thinking.take_remote(), self.text.take_remote())

    def peek(self) -> tuple[str, str]:
        return self.text.peek(), self.thinking.peek()

    def peek_tools(self) -> list[dict[str, Any]] | None:
        """Its tool calls so far, from another thread (a copy; never mutates)."""
        return [dict(item) for item in list(self.calls.items)] or None

    def checkpoint_row(self, now: float) -> tuple[int, str, str] | None:
        if not self._dirty and now - self._last_checkpoint < HEARTBEAT_INTERVAL:
            return None
        self._dirty = False
        self._last_checkpoint = now
        return (self.message_id, self.text.value(), self.thinking.value())

    def start_frame(self) -> str:
        return frames.message_start(
            message_id=self.message_id,
            conversation_id=self.conversation_id,
            model=self.resolved.model.id,
            provider=self.resolved.model.provider,
            byok=self.resolved.credentials.byok,
            parent_id=self.parent_id,
        )

    # --- control -------------------------------------------------------------------------------

    async def launch(self, start_frames: list[str]) -> None:
        await self.hub.register(self, start_frames)
        metrics.REPLIES_IN_FLIGHT.inc()
        self.task = self.loop.create_task(self._run())
        _track(self.task)
        if shutdown.closing():
            self.interrupt()  # it began as its worker started to shut down
        if not self.other_hubs:
            return  # the common case: no other worker has a tab on the conversation
        # After the provider call is under way: through Redis the announcement is a round
        # trip, which the first token need not wait for.
        try:
            await self.hub.announce_started(self, start_frames, self.other_hubs)
        except Exception:
            # The layer is down: this worker's tabs still get the reply, and it is saved.
            logger.warning(
                "reply %s: the other workers could not be told it started",
                self.message_id,
                exc_info=True,
            )

    def stop(self) -> None:
        self.stop_requested = True
        if self._pump is not None:
            self._pump.cancel()

    def interrupt(self) -> None:
        """End the reply now as interrupted (its worker is shutting down): saved and settled."""
        self.interrupted = True
        if self._pump is not None:
            self._pump.cancel()

    # --- the run -------------------------------------------------------------------------------

    async def _run(self) -> None:
        # Every line logged from here on (the provider call, the settle, the title) names it.
        self.span = tracing.reply_started(self)
        logs.bind_reply(
            message_id=self.message_id,
            conversation_id=self.conversation_id,
            trace_id=tracing.trace_id(self.span),
        )
        self.started_at = self.began_at = self.loop.time()
        self._pump = self.loop.create_task(self._consume())
        if self.stop_requested or self.interrupted:
            self._pump.cancel()
        timed_out = False
        try:
            done, _ = await asyncio.wait([self._pump], timeout=settings.REPLY_MAX_SECONDS)
            if not done:
                # A provider that drips tokens for ever: the reply ends with what it has.
                timed_out = True
                self._pump.cancel()
                await asyncio.wait([self._pump])
        except asyncio.CancelledError:
            # The process is going down: the stale heartbeat marks this reply interrupted.
            self._pump.cancel()
            raise
        error: ProviderError | None = None
        if timed_out:
            status = Message.Status.ERROR
            error = ReplyTooLong(_too_long_message())
        elif self._pump.cancelled() and self.interrupted and not self.stop_requested:
            status = Message.Status.INTERRUPTED
            error = WorkerRestarted()
        elif self._pump.cancelled():
            status = Message.Status.STOPPED if self.stop_requested else Message.Status.INTERRUPTED
        elif (exc := self._pump.exception()) is not None:
            status = Message.Status.ERROR
            if isinstance(exc, ProviderError):
                error = exc
            else:
                logger.error("reply %s failed", self.message_id, exc_info=exc)
                error = ProviderFailure("Something went wrong while writing this reply.")
        else:
            status = Message.Status.COMPLETE
        try:
            await self._finish(status, error)
        finally:
            self.hub.unregister(self)
            metrics.REPLIES_IN_FLIGHT.dec()
        if self.stop_requested:
            # Stopped, perhaps because the person deleted the conversation: its rows go now.
            try:
                await database_sync_to_async(maintenance.deleted_conversations_remove)(
                    conversation_id=self.conversation_id
                )
            except Exception:
                # The sweep removes them later.
                logger.exception("could not remove deleted conversation %s", self.conversation_id)
        # Named after its first reply that wrote text, however that reply ended (not by a
        # worker on its way down: the next reply names it).
        if self.text.length and not self.titled and settings.AUTO_TITLES and not shutdown.closing():
            _track(self.loop.create_task(self._name_conversation()))

    async def _name_conversation(self) -> None:
        """After the first reply with text, a short call names the conversation
        (chat/titles.py), from the message it answered and its text."""
        try:
            await titles.name_conversation(
                hub=self.hub,
                owner_id=self.owner_id,
                conversation_id=self.conversation_id,
                message_id=self.message_id,
                resolved=self.resolved,
                question=self.request.messages[-1].content if self.request.messages else "",
                answer=self.text.value(),
            )
        except Exception:
            logger.exception("naming conversation %s failed", self.conversation_id)

    async def _consume(self) -> None:
        """The reply's rounds: one provider call each, then the tools it asked for, until a
        round asks for none (or the loop's round limit)."""
        if self.tool_setup:
            self.toolbox = await offer.toolbox(self.tool_setup)
            if self.toolbox:
                self.request = dataclasses.replace(self.request, tools=self.toolbox.specs())
        while True:
            await self._round()
            if not self.round_calls:
                return
            if self.stop_reason != "tool_use":
                # Cut short (its length limit) while it asked: nothing runs.
                self._calls_not_run("Not run: the reply was cut short as it asked for this.")
                return
            self.round_ended = True
            await self._save_calls()
            if self.round >= settings.TOOL_ROUNDS_MAX:
                self._calls_not_run(tool_loop.limit_note())
                self.stop_reason = "tool_limit"
                return
            assert self.toolbox is not None  # calls are taken only when tools were offered
            outcomes = await tool_loop.run_round(self.toolbox, self.round_calls, self._tool_ran)
            self._round_done(outcomes)
            ahead = await settlement.next_round(self)
            if ahead.refused:
                raise tool_loop.NoCoinsForRound(
                    "Your balance cannot pay for another round of tool calls, so the reply "
                    f"ends here with its text. {ahead.refused}"
                )

    async def _round(self) -> None:
        """One round's call, retried while it has produced nothing (chat/retry.py)."""
        while True:
            try:
                await self._attempt()
                return
            except ProviderError as exc:
                metrics.PROVIDER_ERRORS.labels(self.resolved.model.provider, exc.code).inc()
                produced = self.round_output() > 0
                wait = retry.retry_delay(
                    exc, attempt=self.attempt, produced_output=produced, rng=_rng
                )
                if wait is None:
                    raise
                await settlement.record_failed_attempt(self, exc)
                metrics.RETRIES.labels(self.resolved.model.provider).inc()
                retrying = self._retrying_frame(exc, wait)
                self.hub.deliver(self.conversation_id, retrying)
                if self.remote_watchers:
                    self.hub.relay(self, [retrying])
                with tracing.retry_wait(self, exc, wait):
                    await retry.sleep(wait)
                self.attempt += 1
                self.started_at = self.loop.time()
                self.usage = Usage()
                del self.signatures[self.round_signatures_from :]
                self.round_blocks.clear()

    # --- the tool loop -------------------------------------------------------------------------

    def _round_start(self) -> None:
        self.round_calls: list[ToolCall] = []
        self.round_blocks: list[dict[str, Any]] = []
        self.round_text_from = self.text.length
        self.round_thinking_from = self.thinking.length
        self.round_signatures_from = len(self.signatures)
        # The round's call ended well, asking for tools (its LlmUsage row says `ok`).
        self.round_ended = False

    def round_output(self) -> int:
        """What the current round produced: its text, thinking and calls."""
        return (
            self.text.length
            - self.round_text_from
            + self.thinking.length
            - self.round_thinking_from
            + len(self.round_calls)
        )

    async def _save_calls(self) -> None:
        """The calls asked for, saved for a reload while they run (the tabs have them; the
        final save has them too, so a failure here costs only that)."""
        try:
            await database_sync_to_async(services.reply_tools_save)(
                message_id=self.message_id, tools=self.calls.value()
            )
        except Exception:
            logger.warning("the calls of reply %s could not be saved yet", self.message_id)

    def _round_done(self, outcomes: list[ToolOutcome]) -> None:
        self.rounds.append(
            ToolRound(
                text=self.text.value()[self.round_text_from :],
                calls=tuple(self.round_calls),
                outcomes=tuple(outcomes),
                thinking_blocks=tuple(self.round_blocks),
            )
        )

    def round_billed(self, usage: Usage, ahead: services.NextRound) -> None:
        """The round that ended was billed, and the next one's coins held (or refused)."""
        self.earlier = settlement.added(self.earlier, usage)
        self.earlier_coins += ahead.settlement.coins_charged
        if ahead.settlement.coins_charged:
            self.balance_after = ahead.settlement.balance
            self._send(frames.balance(balance=ahead.settlement.balance))
        self.hold, self.reference = ahead.hold, ahead.reference
        if ahead.refused:
            self.call_open = False
            return
        if ahead.hold is not None:
            self.max_tokens = ahead.max_tokens
        self.round += 1
        self.attempt = 1
        self.usage = Usage()
        self.final_usage = False
        self.stop_reason = "other"
        self.started_at = self.loop.time()
        self.first_delta_at = None
        self._round_start()
        self.request = dataclasses.replace(
            self.request, rounds=tuple(self.rounds), max_tokens=self.max_tokens
        )

    def _send(self, frame: str) -> None:
        """A frame after the text streamed so far, to every tab on every worker."""
        self._delivery.flush()
        self.hub.deliver(self.conversation_id, frame)
        if self.remote_watchers:
            self.hub.relay(self, [*self.take_remote_frames(), frame])

    def _tool_asked(self, call: ToolCall) -> None:
        call, item = self.calls.asked(call, offset=self.text.length, round=self.round)
        self.round_calls.append(call)
        self._send(frames.tool_call(message_id=self.message_id, call=item))

    def _tool_ran(self, call_id: str, result: ToolResult) -> None:
        outcome = self.calls.ran(call_id, result)
        metrics.TOOL_CALLS.labels("error" if result.is_error else "ok").inc()
        self._send(frames.tool_result(message_id=self.message_id, call_id=call_id, result=outcome))

    def _calls_not_run(self, why: str) -> None:
        for call_id in self.calls.unfinished():
            self._tool_ran(call_id, ToolResult(why, is_error=True))

    def _retrying_frame(self, error: ProviderError, wait: float) -> str:
        return frames.retrying(
            message_id=self.message_id,
            attempt=self.attempt + 1,
            max_attempts=retry.MAX_ATTEMPTS,
            wait=wait,
            code=error.code,
            message=error.message,
        )

    async def _attempt(self) -> None:
        self.call_span = tracing.call_started(self)
        failure: BaseException | None = None
        try:
            await self._read()
        except BaseException as exc:
            failure = exc
            raise
        finally:
            tracing.call_ended(self, failure)

    async def _read(self) -> None:
        adapter = self.resolved.adapter
        async for event in adapter.stream(self.request, self.resolved.credentials):
            match event:
                case TextDelta(text=text):
                    self.text.add(clean_text(text), bool(self.remote_watchers))
                    self._after_delta()
                case ThinkingDelta(text=text):
                    if self.round > 1 and self.thinking.length == self.round_thinking_from > 0:
                        # A later round's thinking, apart from the round before's.
                        self.thinking.add("\n\n", bool(self.remote_watchers))
                    self.thinking.add(clean_text(text), bool(self.remote_watchers))
                    self._after_delta()
                case UsageUpdate(usage=usage):
                    self.usage = usage
                case ThinkingBlock() as block:
                    self.round_blocks.append(block.block)
                    if block.signature:
                        self.signatures.append(block.signature)
                case ToolCall() as call if self.toolbox:
                    self._tool_asked(call)
                case MessageStop(stop_reason=stop_reason, usage=usage, final_usage=final):
                    self.stop_reason = stop_reason
                    self.usage = usage
                    self.final_usage = final
                case MessageStart(model=model, id=response_id):
                    if self.call_span is not None:
                        tracing.call_answered(self, response_id, model)
                case ToolCall():
                    # A call when no tool was offered is left out.
                    pass
                case _:
                    assert_never(event)

    def _after_delta(self) -> None:
        self._dirty = True
        now = self.loop.time()
        if self.first_delta_at is None:
            self.first_delta_at = now
            if self.round == 1:
                metrics.TIME_TO_FIRST_TOKEN.labels(self.resolved.model.id).observe(
                    now - self.started_at
                )
            if self.call_span is not None:
                tracing.call_first_token(self)
        self._delivery.text_added(now)

    async def _finish(self, status: str, error: ProviderError | None) -> None:
        self._delivery.finish()
        # Calls still running when the reply ended (a Stop, an error) end with it.
        self._calls_not_run(
            "Stopped." if status == Message.Status.STOPPED else "Not run: the reply ended."
        )
        self.status = status
        end = await settlement.settle(self, status, error)
        # One line per reply, for operators: how it ended and what it took.
        logger.info(
            "reply ended %s: model %s, %d tokens in, %d out, %.2f s%s",
            status,
            self.resolved.model.id,
            self.usage.input_tokens,
            self.usage.output_tokens,
            self.loop.time() - self.started_at,
            f", {error.code}" if error is not None else "",
        )
        self._count(status)
        tracing.reply_ended(self, status, error)
        self.hub.deliver(self.conversation_id, end)
        if self.remote_watchers:
            self.hub.relay(self, [*self.take_remote_frames(), end], ended=True)
        if self.balance_after is not None:
            # The person's tabs on other conversations follow the balance too.
            await self.hub.tell_person(
                self.owner_id,
                frames.balance(balance=self.balance_after),
                hubs=self.person_hubs,
                besides=self.conversation_id,
            )

    def _count(self, status: str) -> None:
        """The reply's ending in the metrics (chatsite/metrics.py): once per reply."""
        model = self.resolved.model.id
        metrics.REPLIES.labels(model, status).inc()
        metrics.REPLY_DURATION.labels(model).observe(self.loop.time() - self.began_at)
        metrics.TOKENS.labels(model, "input").inc(self.usage.input_tokens)
        metrics.TOKENS.labels(model, "output").inc(self.usage.output_tokens)
        if self.coins_charged:
            metrics.COINS.labels(model).inc(self.coins_charged)


class WorkerRestarted(ProviderError):
    """The reply's worker shut down (a deploy, a restart): ended with its text, to retry."""

    code = "interrupted"
    retryable = True
    default_message = (
        "The reply was interrupted: the server writing it restarted. Its text is kept; "
        "you can retry it."
    )


class ReplyTooLong(ProviderTimeout):
    """The reply ran longer than REPLY_MAX_SECONDS: ended as `timeout`, its text kept."""


def _too_long_message() -> str:
    seconds = settings.REPLY_MAX_SECONDS
    amount, unit = (seconds / 60, "minute") if seconds >= 60 else (seconds, "second")
    length = f"{amount:g} {unit}" + ("" if amount == 1 else "s")
    return (
        f"This reply was still being written after {length}, the longest this site allows, "
        "so it was ended here. Its text is kept; you can retry it."
    )


def _track(task: asyncio.Task[None]) -> None:
    _running.add(task)
    task.add_done_callback(_running.discard)


async def wait_for_replies() -> None:
    """Wait until every reply (and title call) of this process has finished.

    Tests only: nothing calls it at shutdown."""
    while _running:
        await asyncio.gather(*list(_running), return_exceptions=True)
