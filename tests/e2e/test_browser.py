"""What a person sees, in a real headless Chromium against a real daphne server."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RETIRES, sign_up_and_open_a_chat, wait_ready
from tests.e2e.servers import manage
from tests.fakes.anthropic import message_response, text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.browser

LONG = [f"word{i} " for i in range(400)]


def send(page: Any, text: str) -> None:
    page.fill("#input", text)
    page.keyboard.press("Enter")


def wait_reply(page: Any, condition: str) -> None:
    """Wait until the last reply's text satisfies a JS condition on `text`."""
    page.wait_for_function(
        "(() => { const el = document.querySelector('li.message--assistant:last-of-type .body');"
        f" const text = el ? el.textContent : ''; return {condition}; }})()"
    )


def wait_ended(page: Any, timeout: float) -> None:
    """The reply to the latest message has ended and its last text is on the page: the last
    message is a reply that no longer streams (the indicator alone is also hidden before the
    reply has begun). Text is painted in the next animation frame: wait for that one."""
    page.wait_for_selector(
        "#messages > li.message--assistant:last-child[data-status]:not([data-status='streaming'])",
        timeout=timeout,
    )
    page.wait_for_selector("#indicator", state="hidden", timeout=timeout)
    page.evaluate("new Promise((painted) => requestAnimationFrame(() => painted(null)))")


def reply_text(page: Any) -> str:
    return str(page.inner_text("li.message--assistant:last-of-type .body")).strip()


def test_a_reply_streams_under_the_indicator_which_goes_away_at_the_end(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    chunks = [f"token{i} " for i in range(150)]
    provider.enqueue(text_reply(chunks, delay=0.02), message_response("A Long Story"))
    send(page, "Tell me something long")
    page.wait_for_selector("#indicator:not([hidden])")
    page.wait_for_function("document.querySelector('#announcer').textContent.includes('started')")
    wait_reply(page, "text.length > 0")
    first = len(reply_text(page))
    page.wait_for_timeout(600)
    second = len(reply_text(page))
    assert 0 < first < second  # the text grows while streaming
    assert page.get_attribute("li.message--assistant:last-of-type", "aria-busy") == "true"
    assert page.evaluate("document.activeElement.id") == "input"  # focus stays in the composer
    page.screenshot(path=str(screenshots / "streaming.png"))
    wait_ended(page, timeout=15000)
    assert reply_text(page) == "".join(chunks).strip()
    assert "complete" in page.inner_text("#announcer")
    assert provider.requests[0].body["messages"][-1]["content"] == "Tell me something long"
    # The first reply names the conversation: heading, tab title and sidebar follow at once.
    page.wait_for_function(
        "document.querySelector('#conversation-title').textContent === 'A Long Story'"
    )
    assert page.title() == "A Long Story"
    assert page.inner_text('.conversation-list a[aria-current="page"]') == "A Long Story"
    # ... by the provider's cheaper title model: its cost shows under the reply, the header's
    # balance follows it, and both are the same after a reload.
    title_cost = "li.message--assistant .message-title-cost"
    page.wait_for_selector(f"{title_cost}:has-text('coin')")
    live = page.inner_text(title_cost)
    assert live.startswith("Title · Claude Haiku 5.5 · ")
    balance = page.inner_text("#balance-value")
    page.screenshot(path=str(screenshots / "complete.png"))
    page.reload()
    wait_ready(page)
    assert (page.inner_text(title_cost), page.inner_text("#balance-value")) == (live, balance)


def test_thinking_streams_into_a_collapsed_section_above_the_answer(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    thoughts = [f"step{i} " for i in range(30)]
    provider.enqueue(text_reply(["The ", "answer."], thinking=thoughts, delay=0.01))
    send(page, "Think first")
    wait_reply(page, "text.trim() === 'The answer.'")
    details = "li.message--assistant:last-of-type details.thinking"
    assert page.is_visible(details) and page.get_attribute(details, "open") is None
    assert page.inner_text(f"{details} summary") == "Thinking"
    page.click(f"{details} summary")
    assert page.inner_text(f"{details} .thinking-body") == "".join(thoughts)
    # Above the answer, and the signature the provider sent is nowhere on the page.
    order = page.eval_on_selector(
        "li.message--assistant:last-of-type",
        "li => [...li.children].map(c => c.className.split(' ')[0])",
    )
    assert order.index("thinking") < order.index("body")
    assert "c2ln" not in page.content()
    page.screenshot(path=str(screenshots / "thinking.png"))
    page.reload()  # saved with the message, collapsed again
    assert page.get_attribute(details, "open") is None
    assert page.text_content(f"{details} .thinking-body") == "".join(thoughts)


def test_stop_by_keyboard_closes_upstream_and_keeps_the_partial_text(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    provider.enqueue(text_reply(LONG, delay=0.02))
    send(page, "Go on and on")
    wait_reply(page, "text.length > 30")
    # While it streams, Send is Stop, and Enter does not send what is typed: it waits.
    assert page.inner_text("#send") == "Stop"
    page.keyboard.type("My next question")
    page.keyboard.press("Enter")
    assert "Press Escape" in page.inner_text("#composer-error")
    assert page.locator("li.message--user").count() == 1
    page.keyboard.press("Tab")  # from the composer to the Stop button
    assert page.evaluate("document.activeElement.id") == "send"
    page.keyboard.press("Enter")
    wait_ended(page, timeout=5000)
    # Stopped: the button sends again, the typed text is still there, the note is gone.
    assert page.inner_text("#send") == "Send"
    assert page.input_value("#input") == "My next question"
    assert page.is_hidden("#composer-error")
    recorded = provider.wait_for_disconnect(2.0)
    assert not recorded.completed
    partial = reply_text(page)
    assert partial.startswith("word0 word1") and "word399" not in partial
    assert page.is_visible("li.message--assistant:last-of-type .message-note")
    page.screenshot(path=str(screenshots / "stopped.png"))
    page.reload()
    assert reply_text(page) == partial
    assert page.get_attribute("li.message--assistant:last-of-type", "data-status") == "stopped"


def test_reload_mid_reply_shows_the_partial_text_at_once_and_the_rest_arrives(
    page: Any, provider: SSEServer
) -> None:
    provider.enqueue(text_reply(LONG[:200], delay=0.02))
    send(page, "Long please")
    wait_reply(page, "text.length > 100")
    html = page.request.get(page.url).text()  # what the server renders, before any script runs
    rendered = re.search(r'data-status="streaming" data-content="([^"]*)"', html)
    assert rendered and rendered.group(1).startswith("word0 word1")
    assert '<div class="indicator" id="indicator">' in html
    page.reload()
    assert reply_text(page).startswith("word0 word1")
    assert page.is_visible("#indicator")
    wait_ended(page, timeout=15000)
    assert reply_text(page) == "".join(LONG[:200]).strip()


def test_a_second_tab_stays_in_sync(page: Any, provider: SSEServer) -> None:
    chunks = [f"sync{i} " for i in range(120)]
    provider.enqueue(text_reply(chunks, delay=0.01))
    other = page.context.new_page()
    other.goto(page.url)
    wait_ready(other)
    send(page, "Both tabs")
    other.wait_for_selector("li.message--user >> text=Both tabs")
    other.wait_for_selector("#indicator:not([hidden])")
    for tab in (page, other):
        wait_ended(tab, timeout=15000)
    assert reply_text(page) == reply_text(other) == "".join(chunks).strip()


def test_an_error_mid_stream_shows_the_partial_text_a_sentence_and_a_working_retry(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    provider.enqueue(
        text_reply(["Half ", "an ", "answer"], error_after=3, delay=0.05),
        text_reply(["A ", "whole ", "answer."]),
    )
    send(page, "Fail please")
    page.wait_for_selector("li.message--assistant .message-error:not([hidden])")
    assert reply_text(page) == "Half an answer"
    error = page.inner_text("li.message--assistant .message-error")
    assert "overloaded" in error.lower() and "{" not in error
    # The text it wrote was billed: its cost is shown, the same after a reload.
    meta = "li.message--assistant .message-meta"
    page.wait_for_selector(f"{meta}:has-text('tokens in')")
    live = page.inner_text(meta)
    assert live.startswith("Claude Sonnet 5.5 · ") and "coin" in live
    page.screenshot(path=str(screenshots / "error.png"))
    page.reload()
    wait_ready(page)
    assert page.inner_text(meta) == live
    page.click("li.message--assistant .retry")
    wait_ended(page, timeout=10000)
    wait_reply(page, "text.includes('whole')")
    assert reply_text(page) == "A whole answer."
    assert page.is_hidden("li.message--assistant .message-error")


def test_a_message_typed_while_disconnected_is_sent_when_the_socket_opens(
    page: Any, provider: SSEServer
) -> None:
    refusing = [True]

    def route(socket: Any) -> None:  # every websocket the page opens passes through here
        if refusing[0]:
            socket.close(code=1001, reason="going away")
        else:
            socket.connect_to_server()

    page.route_web_socket(re.compile(r".*/ws/chat/\d+/$"), route)
    page.reload()
    wait_ready(page)
    page.wait_for_selector("#connection:not([hidden])")  # "Connection lost. Reconnecting…"
    provider.enqueue(text_reply(["Got ", "it."]))
    send(page, "Typed while offline")
    page.wait_for_selector("li.message--pending >> text=Typed while offline")
    assert page.input_value("#input") == ""
    assert [r for r in provider.requests if r.body.get("stream")] == []
    refusing[0] = False  # the next reconnect gets through
    page.wait_for_selector("li.message--pending", state="detached", timeout=15000)
    page.wait_for_selector("#connection", state="hidden")
    wait_reply(page, "text.includes('Got it.')")
    # One reply was started (the first reply's title call, not streamed, may follow it).
    assert len([r for r in provider.requests if r.body.get("stream")]) == 1


REPLY_FRAMES = {"message_start", "text_delta", "thinking_delta", "message_snapshot", "message_stop"}


def test_escape_stops_a_reply(page: Any, provider: SSEServer) -> None:
    provider.enqueue(text_reply(LONG, delay=0.02))
    send(page, "Keep going")
    wait_reply(page, "text.length > 30")
    page.keyboard.press("Escape")
    wait_ended(page, timeout=5000)
    assert page.get_attribute("li.message--assistant:last-of-type", "data-status") == "stopped"


def test_a_refused_send_gives_its_text_back_and_the_reply_streams_on(
    page: Any, provider: SSEServer
) -> None:
    """The server names the refused send by its client_id; the page returns that send's text
    to the composer. Here the page is kept from hearing that a reply streams (another tab
    started it, and its start has not arrived), so it sends, and the server refuses."""
    hiding = [False]

    def route(socket: Any) -> None:
        server = socket.connect_to_server()

        def from_server(message: Any) -> None:
            kind = json.loads(message).get("type")
            if not (hiding[0] and kind in REPLY_FRAMES):
                socket.send(message)

        server.on_message(from_server)

    page.route_web_socket(re.compile(r".*/ws/chat/\d+/$"), route)
    page.reload()
    wait_ready(page)
    hiding[0] = True
    provider.enqueue(text_reply(LONG, delay=0.01))
    page.fill("#input", "First question")
    page.keyboard.press("Enter")
    deadline = time.monotonic() + 5
    while not provider.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    page.wait_for_timeout(300)
    assert page.inner_text("#send") == "Send"  # it has not heard of the reply
    send(page, "Second question, too early")
    page.wait_for_selector("#composer-error:not([hidden])")
    assert "still being written" in page.text_content("#composer-error")
    assert page.input_value("#input") == "Second question, too early"
    assert page.locator("li.message--user").count() == 1


HOSTILE = [
    "Look: <script>window.__pwned = 1</script> ",
    '<img src=x onerror="window.__pwned = 2"> ',
    "[click me](javascript:window.__pwned=3) ",
    "![tracker](http://evil.example/pixel.png) ",
    '<a href="vbscript:x">v</a> <svg onload="window.__pwned=4"></svg> ',
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) done.",
]


def test_hostile_markup_in_a_reply_executes_nothing_and_loads_nothing(
    page: Any, provider: SSEServer
) -> None:
    foreign: list[str] = []
    page.on(
        "request",
        lambda r: (
            foreign.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:")) else None
        ),
    )
    provider.enqueue(text_reply(HOSTILE, delay=0.02))
    send(page, '<img src=x onerror="window.__pwned = 5"> **mine**')
    wait_reply(page, "text.includes('done.')")
    wait_ended(page, timeout=10000)
    page.reload()  # the server-rendered version too
    wait_ready(page)
    for _ in range(2):
        assert page.evaluate("window.__pwned") is None
        body = page.locator("li.message--assistant .body")
        assert body.locator("script, img, svg, iframe").count() == 0
        hrefs = [a.get_attribute("href") or "" for a in body.locator("a").all()]
        assert not any(h.startswith(("javascript:", "vbscript:", "data:")) for h in hrefs)
        assert "<img" in page.inner_text("li.message--user .body")  # shown as text
    assert foreign == []


def test_the_page_works_under_its_content_security_policy(
    browser: Any, live_server_url: str, provider: SSEServer
) -> None:
    """The real CSP: the chat works, nothing it does is refused, hostile markup stays inert."""
    context = browser.new_context(base_url=live_server_url)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: violations.append(str(e)))
    foreign: list[str] = []
    page.on(
        "request", lambda r: None if r.url.startswith(live_server_url) else foreign.append(r.url)
    )
    sign_up_and_open_a_chat(page, "csp")
    policy = page.evaluate(
        "fetch(location.href).then(r => r.headers.get('content-security-policy'))"
    )
    assert "script-src 'self'" in policy
    provider.enqueue(text_reply(HOSTILE, delay=0.01))
    send(page, "Show me")
    page.wait_for_selector("li.message--assistant .body >> text=done.", timeout=15000)
    wait_ended(page, timeout=15000)
    assert page.evaluate("window.__pwned") is None
    assert foreign == []
    assert violations == []  # the site's own scripts, styles and socket are all allowed
    context.close()


def test_the_model_picker_offers_models_by_provider_and_remembers_the_choice(
    page: Any, provider: SSEServer
) -> None:
    groups = page.eval_on_selector_all("#model optgroup", "gs => gs.map(g => g.label)")
    assert groups == ["Anthropic", "OpenAI", "OpenRouter", "Demo"]
    assert page.input_value("#model") == "claude-sonnet-5-5"
    # The lifecycle `sync_models` stored: a deprecated model shows its retirement date.
    assert f"Claude Sonnet 4.5 (retires {RETIRES})" in page.inner_text("#model")
    assert "3 coins per 1,000 tokens in, 15 out" in page.inner_text("#model-info")  # coins
    # No OpenAI key on this site and none of the person's own: offered, disabled, with why.
    gpt = page.locator('#model option[value="gpt-5.5"]')
    # The label stays short; why is said once below the picker, for all OpenAI's models.
    assert gpt.is_disabled() and gpt.inner_text() == "GPT-5.5 (unavailable)"
    reasons = page.locator(".model-unavailable").all_inner_texts()
    assert any(r.startswith("GPT-5.5, GPT-5.4 mini") and "no OpenAI key" in r for r in reasons)
    page.select_option("#model", "demo")
    page.wait_for_function("document.querySelector('#model-info').textContent.includes('local')")
    send(page, "Use the demo")
    wait_ended(page, timeout=15000)
    wait_reply(page, "text.includes('demo model')")
    # The demo model runs offline. (An earlier test's title call, not streamed, may arrive
    # late: a title model the fake does not serve is tried again with the reply's model.)
    assert [r for r in provider.requests if r.body.get("stream")] == []
    page.reload()
    assert page.input_value("#model") == "demo"
    # Picked without sending: the choice is still remembered for the conversation.
    page.select_option("#model", "claude-opus-5-5")
    page.wait_for_timeout(300)
    page.reload()
    assert page.input_value("#model") == "claude-opus-5-5"
    assert page.is_hidden("#model-error")


def test_the_keys_page_never_shows_a_saved_key(page: Any, provider: SSEServer) -> None:
    from tests.fakes.models_list import ANTHROPIC_MODELS

    secret = "sk-ant-api03-browser-secret-key-4242"
    provider.enqueue(ANTHROPIC_MODELS)
    page.goto("/settings/keys/")
    page.fill("#key-input-anthropic", secret)
    page.click("#key-anthropic button[value=save]")
    page.wait_for_selector("text=works and was saved")
    assert "••••4242" in page.inner_text("#key-anthropic")
    assert page.input_value("#key-input-anthropic") == ""
    assert secret not in page.content()
    page.reload()
    assert secret not in page.content()


def test_motion_respects_reduced_motion(browser: Any, live_server_url: str) -> None:
    context = browser.new_context(base_url=live_server_url, reduced_motion="reduce")
    page = context.new_page()
    page.goto("/static/chat/chat.css")  # any same-origin page; the rule is what is checked
    page.set_content(
        '<link rel="stylesheet" href="/static/chat/chat.css">'
        '<span class="dots"><span></span></span>'
    )
    page.wait_for_function("getComputedStyle(document.querySelector('.dots span')).opacity !== ''")
    assert (
        page.evaluate("getComputedStyle(document.querySelector('.dots span')).animationName")
        == "none"
    )
    context.close()


def test_a_replys_cost_line_is_the_same_live_and_after_a_reload(
    page: Any, provider: SSEServer
) -> None:
    provider.enqueue(text_reply(["Costs ", "shown."], input_tokens=1234, output_tokens=56))
    send(page, "What does this cost?")
    wait_ended(page, timeout=15000)
    meta = "li.message--assistant .message-meta"  # the conversation's one reply
    page.wait_for_selector(f"{meta}:has-text('tokens in')")
    live = page.inner_text(meta)
    assert live.startswith("Claude Sonnet 5.5 · 1,234 tokens in, 56 out · ")
    assert live.endswith((" coin", " coins"))
    page.reload()
    wait_ready(page)
    assert page.inner_text(meta) == live


def test_a_tab_on_another_conversation_follows_the_balance(page: Any, provider: SSEServer) -> None:
    provider.enqueue(text_reply(["First."]), message_response("Balances"), text_reply(["Second."]))
    send(page, "Start this conversation")
    wait_ended(page, timeout=15000)
    other = page.context.new_page()
    other.goto(page.url)
    other.click("#new-chat")
    wait_ready(other)
    assert other.url != page.url
    before = other.inner_text("#balance-value")
    send(page, "And again")
    wait_ended(page, timeout=15000)
    page.wait_for_selector("li.message--assistant:last-of-type .message-meta:has-text('coin')")
    after = page.inner_text("#balance-value")
    assert int(after) < int(before)
    other.wait_for_function(f"document.querySelector('#balance-value').textContent === '{after}'")
    other.close()


def test_the_usage_page_is_reached_from_the_header_and_fits_a_phone(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    provider.enqueue(
        text_reply(["Spent."], input_tokens=900, output_tokens=40), message_response("Coins")
    )
    send(page, "Where do my coins go?")
    wait_ended(page, timeout=15000)
    page.wait_for_selector("li.message--assistant .message-title-cost:has-text('coin')")
    balance = page.inner_text("#balance-value")
    with page.expect_navigation():
        page.click("a[href='/usage/']:has-text('Usage')")
    assert page.inner_text("#usage-balance") == balance
    lines = page.locator("#usage-lines tbody tr")
    assert lines.count() == 3  # the reply, its title and the welcome coins
    reply = page.inner_text("#usage-lines tr[data-kind=reply]")
    assert "Claude Sonnet 5.5" in reply and "900" in reply and "Coins" in reply
    assert page.locator("svg.chart rect.chart-bar").count() == 30
    page.screenshot(path=str(screenshots / "usage.png"), full_page=True)
    # The conversation's link goes back to it.
    with page.expect_navigation():
        page.click("#usage-lines tr[data-kind=reply] a")
    wait_ready(page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/usage/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(screenshots / "usage-phone.png"), full_page=True)


def test_the_composer_estimates_the_most_a_message_costs_as_the_server_holds_it(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    import random

    from billing import pricing
    from providers.catalogue import find_model, get_model
    from providers.limits import clamp_max_tokens

    config = json.loads(page.get_attribute("#conversation", "data-config"))["estimate"]
    sonnet = get_model("claude-sonnet-5-5")
    text = "How long should sourdough proof in a cold kitchen?"
    page.fill("#input", text)
    worst = pricing.hold_coins(
        sonnet,
        input_tokens=pricing.estimate_input_tokens(len(text)),
        max_tokens=clamp_max_tokens(sonnet, None),
    )
    shown = page.inner_text("#estimate")
    assert shown.startswith(
        f"At most {worst} coin{'s' if worst != 1 else ''} with Claude Sonnet 5.5."
    )
    page.screenshot(path=str(screenshots / "estimate.png"))
    page.select_option("#model", "demo")
    page.wait_for_function("document.querySelector('#estimate').textContent.includes('Demo')")
    page.fill("#input", "")
    assert page.inner_text("#estimate") == ""

    def server_worst(model_id: str, characters: int, balance: int) -> Any:
        """billing.services.reply_hold's arithmetic, with the real pricing functions."""
        model = find_model(model_id)
        assert model is not None
        wanted = clamp_max_tokens(model, None)
        tokens_in = pricing.estimate_input_tokens(characters)
        full = pricing.hold_coins(model, input_tokens=tokens_in, max_tokens=wanted)
        if full <= balance:
            return {"coins": full, "tokens": wanted}
        granted = min(
            wanted, pricing.affordable_max_tokens(model, balance=balance, input_tokens=tokens_in)
        )
        if granted < min(config["min_reply_tokens"], wanted):
            return {"tooFew": True}
        return {
            "coins": pricing.hold_coins(model, input_tokens=tokens_in, max_tokens=granted),
            "tokens": granted,
        }

    rng = random.Random(28)
    cases = [
        (rng.choice(sorted(config["models"])), rng.randrange(0, 400_000), rng.randrange(0, 3_000))
        for _ in range(300)
    ]
    cases = [c for c in cases if not config["models"][c[0]]["own_key"]]
    browser = page.evaluate(
        "([config, cases]) => cases.map(([id, chars, balance]) =>"
        " window.ChatEstimate.worstCase(config, config.models[id], chars, balance))",
        [config, cases],
    )
    assert browser == [server_worst(*case) for case in cases]
    # The cases cover a full reply, one the balance shortens and one it cannot pay for.
    limits = [config["models"][case[0]]["max_tokens"] for case in cases]
    assert any(r.get("tokens") == limit for r, limit in zip(browser, limits, strict=True))
    assert any(0 < r.get("tokens", 0) < limit for r, limit in zip(browser, limits, strict=True))
    assert any(r.get("tooFew") for r in browser)


def test_the_admin_dashboard_draws_its_charts_under_the_site_s_csp(
    browser: Any, live_server_url: str, e2e_env: dict[str, str], page: Any, screenshots: Path,
    provider: SSEServer,
) -> None:  # fmt: skip
    provider.enqueue(text_reply(["Counted."]), message_response("Dashboards"))
    send(page, "Count me")  # at least one call in the range
    wait_ended(page, timeout=15000)
    name = f"root{int(time.time() * 1000)}"
    manage(
        {**e2e_env, "DJANGO_SUPERUSER_PASSWORD": "an-admin-pass-phrase-8"},
        "createsuperuser", "--noinput", "--username", name, "--email", f"{name}@example.com",
    )  # fmt: skip
    context = browser.new_context(base_url=live_server_url)  # the real CSP
    admin = context.new_page()
    problems: list[str] = []
    admin.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    admin.goto("/admin/login/")
    admin.fill("#id_username", name)
    admin.fill("#id_password", "an-admin-pass-phrase-8")
    with admin.expect_navigation():
        admin.click("input[type=submit]")
    with admin.expect_navigation():
        admin.click("#dashboard-link a")
    assert admin.locator("svg.chart").count() == 5
    assert admin.locator("#dashboard-models tbody tr").count() >= 1
    # The charts take the admin's colours from the site's own stylesheet (not blocked).
    fill = admin.evaluate("getComputedStyle(document.querySelector('.chart-bar')).fill")
    assert fill not in ("", "rgb(0, 0, 0)")
    admin.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)
    context.close()
    assert problems == []


def test_dark_mode_follows_the_system_and_a_choice_is_remembered(
    browser: Any, live_server_url: str, screenshots: Path, provider: SSEServer
) -> None:
    context = browser.new_context(base_url=live_server_url, color_scheme="dark")  # real CSP
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_up_and_open_a_chat(page, "dark")
    background = "getComputedStyle(document.body).backgroundColor"
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    dark_background = page.evaluate(background)
    assert dark_background == "rgb(20, 21, 25)"
    provider.enqueue(text_reply(["| a | b |\n|---|---|\n| 1 | 2 |\n\n```py\nprint(1)\n```"]))
    send(page, "Show me a table")
    wait_ended(page, timeout=15000)
    page.screenshot(path=str(screenshots / "dark.png"))
    # The toggle: system -> dark -> light, remembered across pages and reloads.
    assert page.inner_text("#theme-toggle") == "Theme: system"
    page.click("#theme-toggle")
    page.click("#theme-toggle")
    assert page.inner_text("#theme-toggle") == "Theme: light"
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    page.goto("/usage/")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert page.evaluate(background) == "rgb(247, 247, 248)"
    page.click("#theme-toggle")  # back to following the system
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    context.close()
    assert errors == []


PHONE = {"width": 390, "height": 844}


def test_every_page_fits_a_phone_and_the_conversations_are_behind_the_menu(
    browser: Any, live_server_url: str, screenshots: Path, provider: SSEServer
) -> None:
    context = browser.new_context(
        base_url=live_server_url, viewport=PHONE, is_mobile=True, has_touch=True
    )  # the real CSP
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # On a phone a page wider than the screen widens the layout viewport itself: compare with
    # the screen's width, not innerWidth.
    fits = f"document.documentElement.scrollWidth <= {PHONE['width']}"
    sign_up_and_open_a_chat(page, "phone")
    wide = "| " + " | ".join(f"column{i}" for i in range(12)) + " |\n|" + "---|" * 12
    code = "```python\nprint('" + "x" * 300 + "')\n```"
    provider.enqueue(text_reply([f"{wide}\n| " + " | ".join("v" * 12) + f" |\n\n{code}\n"]))
    send(page, "A wide table and long code, please")
    wait_ended(page, timeout=15000)
    assert page.evaluate(fits)
    # Send and the composer are on screen; the sidebar is not until the menu opens it.
    box = page.locator("#send").bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    assert not page.is_visible("#new-chat")
    page.screenshot(path=str(screenshots / "phone-conversation.png"))
    page.tap("#menu-toggle")
    page.wait_for_selector("#new-chat", state="visible")
    assert page.get_attribute("#menu-toggle", "aria-expanded") == "true"
    page.wait_for_timeout(400)  # its slide (0.2 s) has ended, for the picture
    page.screenshot(path=str(screenshots / "phone-menu.png"))
    page.keyboard.press("Escape")
    page.wait_for_selector("#new-chat", state="hidden")
    assert page.evaluate("document.activeElement.id") == "menu-toggle"
    # Touch targets: at least 44 px high.
    for selector in ("#send", "#menu-toggle", "#theme-toggle", ".topnav a"):
        for handle in page.query_selector_all(selector):
            height = handle.bounding_box()["height"]
            assert height >= 44, (selector, height)
    for url in ("/chat/", "/settings/keys/", "/usage/"):
        page.goto(url)
        assert page.evaluate(fits), url
    page.goto("/chat/")
    assert page.is_visible("#new-chat")  # the list page is the list
    context.close()
    assert errors == []


def serious_accessibility_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations of the WCAG 2.2 A and AA rules on the page."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(
        page,
        options={
            "resultTypes": ["violations"],
            "runOnly": {
                "type": "tag",
                "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"],
            },
        },
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(
    "viewport", [PHONE, {"width": 1280, "height": 800}], ids=["phone", "desktop"]
)
def test_every_page_passes_axe_core_in_both_themes_and_sizes(
    browser: Any, live_server_url: str, provider: SSEServer, scheme: str, viewport: dict[str, int]
) -> None:
    context = browser.new_context(base_url=live_server_url, viewport=viewport, color_scheme=scheme)
    page = context.new_page()
    problems: dict[str, list[str]] = {}
    for url in ("/accounts/login/", "/accounts/signup/"):
        page.goto(url)
        problems[url] = serious_accessibility_problems(page)
    sign_up_and_open_a_chat(page, f"axe{scheme}")
    provider.enqueue(
        text_reply(["A *short* answer with `code`, a [link](https://example.com) and\n\n"
                    "| a | b |\n|---|---|\n| 1 | 2 |\n\n> a quote\n"]),
        message_response("Accessible"),
    )  # fmt: skip
    send(page, "Check me")
    wait_ended(page, timeout=15000)
    page.wait_for_selector("li.message--assistant .message-meta:has-text('coin')")
    problems["conversation"] = serious_accessibility_problems(page)
    for url in ("/chat/", "/settings/keys/", "/usage/"):
        page.goto(url)
        problems[url] = serious_accessibility_problems(page)
    context.close()
    assert {url: found for url, found in problems.items() if found} == {}


def test_keyboard_first_stop_is_a_skip_link_and_every_message_names_its_author(
    page: Any, provider: SSEServer
) -> None:
    provider.enqueue(text_reply(["Labelled."]))
    send(page, "Who says what?")
    wait_ended(page, timeout=15000)
    authors = "li.message .message-author"
    assert page.locator(authors).all_inner_texts() == ["You", "Claude Sonnet 5.5"]
    assert "Your balance is" in page.inner_text("#announcer")  # said once, at the end
    page.reload()
    wait_ready(page)
    assert page.locator(authors).all_inner_texts() == ["You", "Claude Sonnet 5.5"]
    # The conversation's skip link leads to the message box (where the page opens focused).
    assert page.get_attribute(".skip-link", "href") == "#input"
    # Elsewhere the first Tab reaches the skip link, shown when focused, which skips the header.
    page.goto("/usage/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.is_visible(".skip-link")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")


def test_the_keyboard_reaches_every_message_action_in_order_and_copy_works(
    page: Any, provider: SSEServer
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    reply = "Use:\n\n```sh\nmake run\n```"
    provider.enqueue(text_reply([reply]))
    send(page, "How do I start it?")
    wait_ended(page, timeout=15000)
    page.wait_for_selector("li.message--assistant pre code.hljs")
    # Backwards from the message box, as a person tabbing up from it.
    page.focus("#input")
    seen = []
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
        seen.append(
            page.evaluate(
                "(() => { const el = document.activeElement;"
                " return (el.closest('li') ? el.closest('li').className.split(' ')[1] + ':' : '')"
                " + (el.tagName === 'PRE' ? 'PRE'"
                " : el.getAttribute('aria-label') || el.textContent.trim()); })()"
            )
        )
    assert seen[:6] == [
        "message--assistant:Regenerate",
        "message--assistant:Copy",
        "message--assistant:Copy this code",
        "message--assistant:PRE",  # the code block itself scrolls: reachable
        "message--user:Edit",
        "message--user:Copy",
    ]
    # Forward again, six stops, to the reply's Copy; Enter copies its Markdown, and says so.
    for _ in range(6):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Copy"
    page.keyboard.press("Enter")
    assert page.evaluate("navigator.clipboard.readText()") == reply
    assert page.evaluate("document.activeElement.textContent") == "Copied"
    assert page.inner_text("#announcer") == "Copied."


def test_keyboard_only_a_new_chat_a_send_and_a_stop(page: Any, provider: SSEServer) -> None:
    provider.enqueue(text_reply(["First."]))
    send(page, "A first chat")  # (an empty one is what New chat opens again)
    wait_ended(page, timeout=15000)
    first_chat = page.url
    page.keyboard.press("Escape")  # nothing streams: nothing happens
    page.evaluate("document.activeElement.blur()")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "new-chat":
            break
    assert page.evaluate("document.activeElement.id") == "new-chat"
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url != first_chat)
    wait_ready(page)
    # The message box has the focus: type, Enter sends, Escape stops.
    assert page.evaluate("document.activeElement.id") == "input"
    provider.enqueue(text_reply([f"tok{i} " for i in range(400)], delay=0.02))
    page.keyboard.type("Go on for a while")
    page.keyboard.press("Enter")
    page.wait_for_selector("li.message--assistant .body:has-text('tok5')")
    page.keyboard.press("Escape")
    page.wait_for_selector("li.message--assistant[data-status='stopped']")
    assert page.evaluate("document.activeElement.id") == "input"


def test_an_empty_conversation_offers_examples_that_fill_the_message_box(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    examples = page.locator("#examples button.example")
    assert examples.count() == 4
    # On a desktop the list is a column beside the conversation, in the same row.
    sidebar, conversation = (
        page.locator("#sidebar").bounding_box(),
        page.locator("#conversation").bounding_box(),
    )
    assert sidebar and conversation
    assert conversation["x"] >= sidebar["x"] + sidebar["width"] and conversation["y"] < 100
    page.screenshot(path=str(screenshots / "empty.png"))
    prompt = examples.nth(2).inner_text()
    examples.nth(2).click()
    assert page.input_value("#input") == prompt
    assert page.evaluate("document.activeElement.id") == "input"
    assert page.inner_text("#estimate").startswith("At most ")
    provider.enqueue(text_reply(["| PostgreSQL | SQLite |\n|---|---|\n| server | file |\n"]))
    page.keyboard.press("Enter")
    page.wait_for_selector("#examples", state="detached")
    wait_ended(page, timeout=15000)
    page.reload()
    wait_ready(page)
    assert page.locator("#examples").count() == 0


def test_code_is_highlighted_and_messages_and_code_blocks_copy(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    reply = "Here:\n\n```python\ndef double(x):\n    return 2 * x  # twice\n```\n\nDone."
    provider.enqueue(text_reply([reply[:20], reply[20:]]))
    send(page, "Write a function")
    wait_ended(page, timeout=15000)
    code = "li.message--assistant pre code"
    page.wait_for_selector(f"{code}.hljs")
    assert page.locator(f"{code} .hljs-keyword").first.inner_text() == "def"
    assert page.locator(f"{code} .hljs-comment").inner_text() == "# twice"
    page.screenshot(path=str(screenshots / "code.png"))
    # The code block's button copies its code; the reply's copies its Markdown.
    page.click("li.message--assistant .copy-code")
    assert page.evaluate("navigator.clipboard.readText()") == (
        "def double(x):\n    return 2 * x  # twice\n"
    )
    page.click("li.message--assistant .copy-message")
    assert page.evaluate("navigator.clipboard.readText()") == reply
    page.click("li.message--user .copy-message")
    assert page.evaluate("navigator.clipboard.readText()") == "Write a function"
    # After a reload the same, from the server's rendering.
    page.reload()
    wait_ready(page)
    page.wait_for_selector(f"{code}.hljs")
    assert page.locator("li.message--assistant .copy-code").count() == 1


def test_a_table_keeps_its_column_alignment_live_and_after_a_reload(
    page: Any, provider: SSEServer
) -> None:
    reply = "| item | price |\n|:--|--:|\n| tea | 3.50 |\n| cake | 12.00 |\n\nThat's all."
    provider.enqueue(text_reply([reply[:25], reply[25:]]))
    send(page, "Prices in a table")
    wait_ended(page, timeout=15000)
    cell = "li.message--assistant td:nth-child(2)"

    def aligned() -> list[str]:
        return [
            page.eval_on_selector(f"{cell} >> nth={i}", "el => getComputedStyle(el).textAlign")
            for i in range(2)
        ]

    assert aligned() == ["right", "right"]
    assert page.get_attribute("li.message--assistant th:first-child", "class") == "align-left"
    page.reload()
    wait_ready(page)
    assert aligned() == ["right", "right"]  # the server's rendering says the same


# Counts, from the page's first script on, the frames its socket receives by type and the changes
# made inside a reply's body once the page has loaded (its own script's work done).
WATCH_FRAMES_AND_REPAINTS = """
window.framesSeen = [];
window.replyRepaints = 0;
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (e) => window.framesSeen.push(JSON.parse(e.data).type));
  }
};
document.addEventListener("DOMContentLoaded", () => {
  new MutationObserver((records) => {
    for (const m of records) {
      const el = m.target.nodeType === Node.ELEMENT_NODE ? m.target : m.target.parentElement;
      if (el && el.closest("li.message--assistant .body")) window.replyRepaints += 1;
    }
  }).observe(document.getElementById("messages"),
             { childList: true, subtree: true, characterData: true });
});
"""


def test_the_catch_up_after_a_reload_leaves_an_ended_reply_as_the_server_rendered_it(
    page: Any, provider: SSEServer
) -> None:
    """The socket's catch-up repeats the ended reply the page shows: nothing in it is painted
    again, so text a person selects right after a load stays selected."""
    provider.enqueue(text_reply(["| a | b |\n|--:|:--|\n| 1 | 2 |\n\n", "Done, ", "truly."]))
    send(page, "A small table")
    wait_ended(page, timeout=15000)
    page.add_init_script(WATCH_FRAMES_AND_REPAINTS)
    page.reload()
    wait_ready(page)
    page.evaluate(
        """() => {
          const cell = document.querySelector("li.message--assistant td");
          window.getSelection().selectAllChildren(cell);
        }"""
    )
    page.wait_for_function("window.framesSeen.includes('message_snapshot')")
    page.evaluate("new Promise((painted) => requestAnimationFrame(() => painted(null)))")
    assert page.evaluate("window.replyRepaints") == 0
    assert page.evaluate("window.getSelection().toString()") == "1"
    assert (
        page.eval_on_selector("li.message--assistant td", "el => getComputedStyle(el).textAlign")
        == "right"
    )


def test_a_streaming_reply_keeps_its_finished_blocks_so_a_selection_holds(
    page: Any, provider: SSEServer
) -> None:
    """Only the block being written is painted again: the paragraphs above it are the same
    elements from frame to frame, and text selected in them stays selected."""
    chunks = []
    for n in range(30):  # thirty paragraphs, a word at a time, a blank line after each
        words = [f"Paragraph {n}", *(f"w{n}x{i}" for i in range(20))]
        chunks += [w + " " for w in words[:-1]] + [words[-1] + "\n\n"]
    provider.enqueue(text_reply([*chunks, "The end."], delay=0.01))
    send(page, "Thirty paragraphs, please")
    wait_reply(page, "text.includes('w3x5')")
    first = page.evaluate_handle(
        "document.querySelector('li.message--assistant:last-of-type .body p')"
    )
    page.evaluate(
        "(p) => { const range = document.createRange(); range.selectNodeContents(p);"
        " const s = window.getSelection(); s.removeAllRanges(); s.addRange(range); }",
        first,
    )
    selected = page.evaluate("window.getSelection().toString()")
    assert selected.startswith("Paragraph 0 w0x0")
    wait_reply(page, "text.includes('w20x5')")  # many frames later
    assert first.evaluate("(p) => p.isConnected")
    assert page.evaluate("window.getSelection().toString()") == selected
    wait_ended(page, timeout=20000)
    assert reply_text(page).endswith("The end.")
    assert page.locator("li.message--assistant:last-of-type .body p").count() == 31
