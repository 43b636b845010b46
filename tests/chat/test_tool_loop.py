"""The tool loop through the consumer: a reply asks for tools, they run, the next round streams
into the same reply; Stop, reconnects, billing and failures hold in every round (invariant 10).
The providers are the wire-level fakes; the tools are the registry's, and a few of the test's
own (slow, failing) registered beside them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async

from billing.models import LlmUsage
from billing.services import balance_of, reconcile, unreleased_holds
from chat import runner, selectors
from chat.models import Conversation, Message
from tests.chat.helpers import ClientView, connect, receive, send, until_end
from tests.fakes import anthropic, openai
from tests.fakes.sse_server import SSEServer
from tools import offer
from tools.models import BuiltinTool
from tools.registry import REGISTRY, Tool

pytestmark = pytest.mark.django_db(transaction=True)

CLAUDE = "claude-sonnet-5-5"
SUM = ("toolu_1", "calculator", ['{"expression": ', '"6 * 7"}'])

# What the test's own tools saw: started, and ended (a cancelled one too).
seen: dict[str, list[str]] = {"started": [], "ended": []}


async def _slow(arguments: dict[str, Any]) -> str:
    seen["started"].append(arguments["label"])
    try:
        await asyncio.sleep(arguments.get("seconds", 30))
        return f"slept {arguments['label']}"
    finally:
        seen["ended"].append(arguments["label"])


async def _broken(arguments: dict[str, Any]) -> str:
    raise RuntimeError("secret internals /etc/passwd")


_LABELLED = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "seconds": {"type": "number"}},
    "required": ["label"],
}
TEST_TOOLS = (
    Tool(name="slow_tool", description="Sleeps.", input_schema=_LABELLED, run=_slow),
    Tool(name="broken_tool", description="Raises.", input_schema=_LABELLED, run=_broken),
)


@pytest.fixture(autouse=True)
def _tools_on() -> Iterator[None]:
    """The built-in tools as migrate switched them on, and the test's own beside them."""
    for tool in TEST_TOOLS:
        if REGISTRY.get(tool.name) is None:
            REGISTRY.register(tool)
        BuiltinTool.objects.get_or_create(name=tool.name)
    offer.forget_setup()
    seen["started"].clear()
    seen["ended"].clear()
    yield
    offer.forget_setup()


@pytest.fixture
def conversation(alice: Any) -> Conversation:
    return Conversation.objects.create(owner=alice, model=CLAUDE)


def call(call_id: str, name: str, arguments: dict[str, Any]) -> tuple[str, str, list[str]]:
    """A call whose input's JSON arrives split in two anywhere."""
    text = json.dumps(arguments)
    return (call_id, name, [text[:5], text[5:]])


async def ask(alice: Any, conversation: Conversation, content: str = "What is 6 * 7?") -> Any:
    tab = await connect(alice, conversation)
    await send(tab, type="send", content=content)
    return tab


async def usage_rows(message_id: int) -> list[LlmUsage]:
    return [row async for row in LlmUsage.objects.filter(message_id=message_id).order_by("id")]


async def test_a_reply_calls_a_tool_and_streams_its_next_round_into_the_same_reply(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(
        anthropic.text_reply(["Let me ", "work it out."], calls=[SUM], output_tokens=30)
    )
    anthropic_server.enqueue(
        anthropic.text_reply([" It is ", "42."], input_tokens=90, output_tokens=8)
    )
    start_balance = await database_sync_to_async(balance_of)(user_id=alice.pk)
    tab = await ask(alice, conversation)
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()

    kinds = [f["type"] for f in frames]
    assert kinds.index("tool_call") < kinds.index("tool_result")
    called = next(f for f in frames if f["type"] == "tool_call")
    result = next(f for f in frames if f["type"] == "tool_result")
    # Placed where the text stood when the model asked; the text runs on after it.
    assert called["name"] == "calculator" and called["input"] == {"expression": "6 * 7"}
    assert called["offset"] == len("Let me work it out.")
    assert result["call_id"] == called["call_id"] == "toolu_1"
    assert result["is_error"] is False and result["content"] == "42"
    later = [
        f
        for f in frames
        if f["type"] == "text_delta" and kinds.index("tool_result") < frames.index(f)
    ]
    assert later and later[0]["offset"] == called["offset"]
    view = ClientView()
    for frame in frames:
        view.apply(frame)
    stop = frames[-1]
    message_id = stop["message_id"]
    assert view.text[message_id] == "Let me work it out. It is 42."

    # The second round was sent the first one's call and its result, after the person's message.
    second = anthropic_server.requests[1].body
    assistant, results = second["messages"][-2:]
    assert assistant["role"] == "assistant" and assistant["content"] == [
        {"type": "text", "text": "Let me work it out."},
        {
            "type": "tool_use",
            "id": "toolu_1",
            "name": "calculator",
            "input": {"expression": "6 * 7"},
        },
    ]
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42", "is_error": False}
        ],
    }
    assert {tool["name"] for tool in second["tools"]} >= {"calculator", "current_time"}

    # Each round is a provider call: its own LlmUsage row, billed; the reply shows both.
    rows = await usage_rows(message_id)
    assert [(r.round, r.status, r.output_tokens) for r in rows] == [(1, "ok", 30), (2, "ok", 8)]
    coins = sum(r.coins_charged for r in rows)
    assert coins > 0 and stop["coins_charged"] == coins
    assert stop["usage"]["output_tokens"] == 38
    assert stop["balance"] == start_balance - coins
    # After a reload the reply shows the same coins: all its rounds'.
    charges = await database_sync_to_async(selectors.reply_charges)(message_ids=[message_id])
    assert charges == {message_id: coins}
    assert await database_sync_to_async(reconcile)() == []
    assert not await unreleased_holds().aexists()
    saved = await Message.objects.aget(pk=message_id)
    assert saved.status == "complete" and saved.content == view.text[message_id]
    assert (saved.input_tokens, saved.output_tokens) == (25 + 90, 38)
    assert saved.tools is not None
    assert [c["result"]["content"] for c in saved.tools] == ["42"]
    assert [{k: v for k, v in c.items() if k != "round"} for c in saved.tools] == view.tools[
        message_id
    ]


async def test_several_calls_in_a_round_run_at_once(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    calls = [call(f"toolu_{n}", "slow_tool", {"label": str(n), "seconds": 0.4}) for n in range(3)]
    anthropic_server.enqueue(anthropic.text_reply(["Three naps."], calls=calls))
    anthropic_server.enqueue(anthropic.text_reply(["Rested."]))
    tab = await ask(alice, conversation, "Nap three times")
    began = time.monotonic()
    frames = await until_end(tab)
    took = time.monotonic() - began
    await tab.disconnect()
    results = [f for f in frames if f["type"] == "tool_result"]
    assert sorted(r["content"] for r in results) == ["slept 0", "slept 1", "slept 2"]
    assert took < 1.1  # three 0.4 s calls side by side, not one after another
    second = anthropic_server.requests[1].body["messages"][-1]["content"]
    assert [part["tool_use_id"] for part in second] == ["toolu_0", "toolu_1", "toolu_2"]


async def test_stop_while_a_tool_runs_cancels_it_and_ends_the_reply_within_300_ms(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    nap = call("toolu_nap", "slow_tool", {"label": "nap", "seconds": 30})
    anthropic_server.enqueue(anthropic.text_reply(["Napping."], calls=[nap], output_tokens=12))
    tab = await ask(alice, conversation, "Nap")
    view = ClientView()
    while (frame := await receive(tab))["type"] != "tool_call":
        view.apply(frame)
    view.apply(frame)
    while not seen["started"]:  # noqa: ASYNC110 (the tool runs in this loop: a short poll)
        await asyncio.sleep(0.005)
    stopped_at = time.monotonic()
    await send(tab, type="stop")
    frames = await until_end(tab)
    assert time.monotonic() - stopped_at < 0.3
    assert seen["ended"] == ["nap"]  # cancelled, not left running
    for frame in frames:
        view.apply(frame)
    stop = frames[-1]
    assert stop["type"] == "message_stop" and stop["stop_reason"] == "stopped"
    result = next(f for f in frames if f["type"] == "tool_result")
    assert result["is_error"] is True and result["content"] == "Stopped."
    await tab.disconnect()
    await runner.wait_for_replies()
    # The round that asked was a whole call, billed as such; no second call was made.
    assert len(anthropic_server.requests) == 1
    rows = await usage_rows(stop["message_id"])
    assert [(r.round, r.status, r.output_tokens) for r in rows] == [(1, "ok", 12)]
    assert stop["coins_charged"] == rows[0].coins_charged > 0
    saved = await Message.objects.aget(pk=stop["message_id"])
    assert saved.status == "stopped" and saved.content == "Napping."
    assert saved.tools is not None
    assert saved.tools[0]["result"]["content"] == "Stopped."
    assert view.tools[stop["message_id"]][0]["result"]["content"] == "Stopped."
    assert await database_sync_to_async(reconcile)() == []
    assert not await unreleased_holds().aexists()


async def test_stop_in_a_later_round_closes_its_stream_within_300_ms(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(anthropic.text_reply(["Sum first."], calls=[SUM]))
    anthropic_server.enqueue(anthropic.text_reply([f"tok{i} " for i in range(500)], delay=0.01))
    tab = await ask(alice, conversation)
    while (await receive(tab))["type"] != "tool_result":
        pass
    while (await receive(tab))["type"] != "text_delta":
        pass
    stop_sent = time.monotonic()
    await send(tab, type="stop")
    frames = await until_end(tab)
    loop = asyncio.get_running_loop()
    recorded = await loop.run_in_executor(None, anthropic_server.wait_for_disconnect, 1.0)
    assert recorded is anthropic_server.requests[1]
    assert recorded.disconnected_at is not None and recorded.disconnected_at - stop_sent < 0.3
    assert frames[-1]["stop_reason"] == "stopped"
    await tab.disconnect()
    await runner.wait_for_replies()
    rows = await usage_rows(frames[-1]["message_id"])
    assert [(r.round, r.status) for r in rows] == [(1, "ok"), (2, "stopped")]
    assert frames[-1]["coins_charged"] == sum(r.coins_charged for r in rows)
    assert await database_sync_to_async(reconcile)() == []


async def test_a_reconnecting_tab_gets_the_calls_so_far_in_its_snapshot(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    nap = call("toolu_nap", "slow_tool", {"label": "nap", "seconds": 0.5})
    anthropic_server.enqueue(anthropic.text_reply(["Done "], calls=[SUM, nap]))
    anthropic_server.enqueue(anthropic.text_reply(["and rested."]))
    tab = await ask(alice, conversation, "Sum, then nap")
    while (await receive(tab))["type"] != "tool_result":
        pass  # the sum ran; the nap runs on
    await tab.disconnect()  # a closed tab does not stop the loop
    late = await connect(alice, conversation)
    snapshot = await receive(late)
    while snapshot["type"] != "message_snapshot":
        snapshot = await receive(late)
    assert snapshot["status"] == "streaming" and snapshot["content"] == "Done "
    by_id = {c["call_id"]: c for c in snapshot["tools"]}
    assert by_id["toolu_1"]["result"]["content"] == "42"
    assert by_id["toolu_nap"]["result"] is None  # still running
    view = ClientView()
    view.apply(snapshot)
    for frame in await until_end(late):
        view.apply(frame)
    await late.disconnect()
    await runner.wait_for_replies()
    message_id = snapshot["message_id"]
    saved = await Message.objects.aget(pk=message_id)
    assert saved.status == "complete" and saved.content == "Done and rested."
    assert view.text[message_id] == saved.content
    assert [c["result"]["content"] for c in view.tools[message_id]] == ["42", "slept nap"]


async def test_a_failing_tool_goes_back_to_the_model_as_an_error_result(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    calls = [
        call("toolu_b", "broken_tool", {"label": "x"}),
        call("toolu_u", "no_such_tool", {}),
        ("toolu_j", "calculator", ['{"expression": ']),  # input that is no JSON
    ]
    anthropic_server.enqueue(anthropic.text_reply(["Trying."], calls=calls))
    anthropic_server.enqueue(anthropic.text_reply(["None of that worked."]))
    tab = await ask(alice, conversation, "Try the tools")
    frames = await until_end(tab)
    await tab.disconnect()
    assert frames[-1]["type"] == "message_stop"
    results = {f["call_id"]: f for f in frames if f["type"] == "tool_result"}
    assert all(r["is_error"] for r in results.values())
    assert results["toolu_b"]["content"] == "The tool failed unexpectedly."
    assert "no_such_tool" in results["toolu_u"]["content"]
    assert results["toolu_j"]["content"] == "The tool input was not valid JSON."
    sent = anthropic_server.requests[1].body["messages"][-1]["content"]
    assert [(r["tool_use_id"], r["is_error"]) for r in sent] == [
        ("toolu_b", True),
        ("toolu_u", True),
        ("toolu_j", True),
    ]
    assert "passwd" not in json.dumps(frames) + json.dumps(sent)


async def test_the_round_limit_ends_the_reply_and_says_so(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer, settings: Any
) -> None:
    settings.TOOL_ROUNDS_MAX = 2
    anthropic_server.enqueue(anthropic.text_reply(["One."], calls=[SUM]))
    anthropic_server.enqueue(anthropic.text_reply([" Two."], calls=[("toolu_2", *SUM[1:])]))
    tab = await ask(alice, conversation)
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    stop = frames[-1]
    assert stop["type"] == "message_stop" and stop["stop_reason"] == "tool_limit"
    last = [f for f in frames if f["type"] == "tool_result"][-1]
    assert last["is_error"] and "limit of 2 rounds" in last["content"]
    assert len(anthropic_server.requests) == 2
    rows = await usage_rows(stop["message_id"])
    assert [(r.round, r.status) for r in rows] == [(1, "ok"), (2, "ok")]
    saved = await Message.objects.aget(pk=stop["message_id"])
    assert (saved.status, saved.stop_reason, saved.content) == (
        "complete",
        "tool_limit",
        "One. Two.",
    )


async def test_a_balance_that_cannot_pay_for_another_round_ends_the_reply_with_its_text(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    # The first round costs nearly all of the 1,000 coins (its output is what the provider
    # reports): 66,600 tokens of Sonnet's output are 999 coins.
    anthropic_server.enqueue(
        anthropic.text_reply(["Costly."], calls=[SUM], input_tokens=10, output_tokens=66_600)
    )
    tab = await ask(alice, conversation)
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    end = frames[-1]
    assert end["type"] == "error" and end["code"] == "insufficient_coins"
    assert "another round" in end["message"] and end["partial_content"] == "Costly."
    assert len(anthropic_server.requests) == 1
    rows = await usage_rows(end["message_id"])
    assert [(r.round, r.status) for r in rows] == [(1, "ok")]
    assert end["coins_charged"] == rows[0].coins_charged
    assert await database_sync_to_async(balance_of)(user_id=alice.pk) >= 0
    assert await database_sync_to_async(reconcile)() == []
    assert not await unreleased_holds().aexists()
    saved = await Message.objects.aget(pk=end["message_id"])
    assert saved.status == "error" and saved.content == "Costly."
    assert saved.tools is not None
    assert saved.tools[0]["result"]["content"] == "42"


async def test_retries_happen_before_a_rounds_first_delta(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer, waits: list[float]
) -> None:
    anthropic_server.enqueue(anthropic.text_reply(["Sum."], calls=[SUM]))
    anthropic_server.enqueue(anthropic.error_response(529, "overloaded_error", "Overloaded"))
    anthropic_server.enqueue(anthropic.text_reply([" 42."]))
    tab = await ask(alice, conversation)
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    assert [f["type"] for f in frames].count("retrying") == 1
    assert frames[-1]["type"] == "message_stop"
    rows = await usage_rows(frames[-1]["message_id"])
    assert [(r.round, r.attempt, r.status) for r in rows] == [
        (1, 1, "ok"),
        (2, 1, "error"),
        (2, 2, "ok"),
    ]
    saved = await Message.objects.aget(pk=frames[-1]["message_id"])
    assert saved.content == "Sum. 42."


async def test_an_error_after_a_rounds_first_delta_keeps_the_text_and_bills_what_ran(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(anthropic.text_reply(["Sum."], calls=[SUM]))
    anthropic_server.enqueue(anthropic.text_reply([" 4", "2", "!"], error_after=2))
    tab = await ask(alice, conversation)
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    end = frames[-1]
    assert end["type"] == "error" and end["retryable"] is True
    assert end["partial_content"] == "Sum. 42"
    rows = await usage_rows(end["message_id"])
    assert [(r.round, r.status) for r in rows] == [(1, "ok"), (2, "error")]
    assert await database_sync_to_async(reconcile)() == []


async def test_thinking_blocks_and_their_signatures_go_back_with_the_next_round(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(anthropic.text_reply(["Sum."], thinking=["Add ", "up."], calls=[SUM]))
    anthropic_server.enqueue(anthropic.text_reply([" 42."], thinking=["Done."]))
    tab = await ask(alice, conversation)
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    assistant = anthropic_server.requests[1].body["messages"][-2]
    assert assistant["content"][0] == {
        "type": "thinking",
        "thinking": "Add up.",
        "signature": "c2ln",
    }
    saved = await Message.objects.aget(pk=frames[-1]["message_id"])
    # Each round's thinking, apart; signatures stay server-side.
    assert saved.thinking == "Add up.\n\nDone."
    assert "c2ln" not in json.dumps(frames)


async def test_openai_rounds_send_tool_calls_and_tool_messages(
    alice: Any, openai_server: SSEServer
) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model="gpt-5.5")
    openai_server.enqueue(
        openai.text_reply(
            ["Let me add."], calls=[("call_1", "calculator", ['{"expression"', ': "6*7"}'])]
        )
    )
    openai_server.enqueue(openai.text_reply([" 42."]))
    tab = await ask(alice, conversation)
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    assert frames[-1]["type"] == "message_stop"
    messages = openai_server.requests[1].body["messages"]
    assert messages[-2] == {
        "role": "assistant",
        "content": "Let me add.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "6*7"}'},
            }
        ],
    }
    assert messages[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "42"}
    rows = await usage_rows(frames[-1]["message_id"])
    assert [r.round for r in rows] == [1, 2]


async def test_openrouter_reasoning_details_go_back_with_the_next_round(
    alice: Any, openrouter_server: SSEServer
) -> None:
    conversation = await Conversation.objects.acreate(
        owner=alice, model="anthropic/claude-sonnet-5.5"
    )
    details = [
        {"type": "reasoning.text", "text": "Add ", "index": 0, "format": "anthropic-claude-v1"},
        {"type": "reasoning.text", "text": "up.", "index": 0},
        {"type": "reasoning.text", "signature": "c2ln", "index": 0},
    ]
    openrouter_server.enqueue(
        openai.text_reply(
            ["Adding."],
            model="anthropic/claude-sonnet-5.5",
            reasoning_details=details,
            calls=[("call_1", "calculator", ['{"expression": "6*7"}'])],
            cost=0.001,
        )
    )
    openrouter_server.enqueue(
        openai.text_reply([" 42."], model="anthropic/claude-sonnet-5.5", cost=0.001)
    )
    tab = await ask(alice, conversation)
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    assert frames[-1]["type"] == "message_stop"
    assistant = openrouter_server.requests[1].body["messages"][-2]
    assert assistant["reasoning_details"] == [
        {
            "type": "reasoning.text",
            "text": "Add up.",
            "signature": "c2ln",
            "index": 0,
            "format": "anthropic-claude-v1",
        }
    ]


async def test_no_tools_are_offered_where_the_person_or_the_admin_switched_them_off(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    await Conversation.objects.filter(pk=conversation.pk).aupdate(tools_enabled=False)
    anthropic_server.enqueue(anthropic.text_reply(["No tools."]))
    tab = await ask(alice, conversation)
    await until_end(tab)
    assert "tools" not in anthropic_server.requests[0].body

    await Conversation.objects.filter(pk=conversation.pk).aupdate(tools_enabled=True)
    await BuiltinTool.objects.exclude(name="calculator").aupdate(enabled=False)
    await BuiltinTool.objects.filter(name="calculator").aupdate(for_models="gpt-5.5")
    offer.forget_setup()
    anthropic_server.enqueue(anthropic.text_reply(["Still none."]))
    await send(tab, type="send", content="And now?")
    await until_end(tab)
    assert "tools" not in anthropic_server.requests[1].body  # the calculator is GPT's only

    await BuiltinTool.objects.filter(name="calculator").aupdate(for_models=f"gpt-5.5, {CLAUDE}")
    offer.forget_setup()
    anthropic_server.enqueue(anthropic.text_reply(["One."]))
    await send(tab, type="send", content="And now?")
    await until_end(tab)
    assert [t["name"] for t in anthropic_server.requests[2].body["tools"]] == ["calculator"]
    await tab.disconnect()


async def test_a_person_sees_only_their_own_calls(
    alice: Any, bob: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(anthropic.text_reply(["Sum."], calls=[SUM]))
    anthropic_server.enqueue(anthropic.text_reply([" 42."]))
    theirs = await Conversation.objects.acreate(owner=bob, model=CLAUDE)
    watcher = await connect(bob, theirs)
    tab = await ask(alice, conversation)
    await until_end(tab)
    assert await watcher.receive_nothing(timeout=0.2)
    await tab.disconnect()
    await watcher.disconnect()


async def test_a_tab_on_another_worker_sees_the_calls_in_order(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    from chat.hub import Hub
    from tests.chat.test_relay import RemoteTab, show

    anthropic_server.enqueue(anthropic.text_reply([f"w{i} " for i in range(20)], calls=[SUM]))
    anthropic_server.enqueue(anthropic.text_reply([" It is 42."]))
    other_worker, remote = Hub(), RemoteTab()
    await show(other_worker, remote, alice, conversation)
    tab = await ask(alice, conversation)
    local = await until_end(tab)
    remote_frames = await remote.until_end()
    views = []
    for frames in (local, remote_frames):
        view = ClientView()
        for frame in frames:
            view.apply(frame)
        views.append(view)
    message_id = local[-1]["message_id"]
    assert views[0].text[message_id] == views[1].text[message_id]
    assert views[0].tools[message_id] == views[1].tools[message_id]
    assert views[1].tools[message_id][0]["result"]["content"] == "42"
    # Whenever a call reaches the far tab (as a frame, or in a snapshot if its watch began
    # later, as through Redis), the tab has all the text before it, so it places the call there.
    placed = ClientView()
    for frame in remote_frames:
        if frame["type"] == "tool_call":
            assert len(placed.text[frame["message_id"]]) == frame["offset"]
        placed.apply(frame)
    assert placed.tools[message_id][0]["offset"] <= len(placed.text[message_id])
    await tab.disconnect()
    await other_worker.leave(remote, conversation.pk)
    await other_worker.close()
