"""Tool calls on the page, in Chromium: collapsed blocks in place that open with the keyboard,
live and after a reload, in a second tab, on a phone and a desktop in light and dark (axe-core),
the demo model's own call, and the person's switch for tools."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import sign_up_and_open_a_chat, wait_ready
from tests.e2e.test_browser import PHONE, send, serious_accessibility_problems, wait_ended
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.browser

REPLY = "li.message--assistant:not([hidden])"
SUM = ("toolu_1", "calculator", ['{"expression": ', '"6 * 7"}'])


def parts(page: Any) -> list[str]:
    """The reply's body, part by part: "text: …" or "tool: name"."""
    return page.evaluate(
        """(selector) => [...document.querySelector(selector + ' .body').children].flatMap((el) =>
             el.classList.contains('tool-calls')
               ? [...el.querySelectorAll('.tool-name')].map((n) => 'tool: ' + n.textContent)
               : el.textContent.trim() ? ['text: ' + el.textContent.trim()] : [])""",
        REPLY,
    )


def test_a_reply_shows_its_tool_call_collapsed_in_place(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    other = page.context.new_page()
    other.goto(page.url)
    wait_ready(other)
    provider.enqueue(
        text_reply(["Let me ", "work it out."], calls=[SUM]),
        text_reply([" It is **42**."]),
    )
    send(page, "What is 6 * 7?")
    wait_ended(page, timeout=15000)
    expected = ["text: Let me work it out.", "tool: calculator", "text: It is 42."]
    assert parts(page) == expected
    block = f"{REPLY} details.tool-call"
    assert page.get_attribute(block, "data-state") == "done"
    assert page.get_attribute(block, "open") is None  # collapsed
    assert re.fullmatch(r"\d+ ms|\d+\.\d s", page.inner_text(f"{block} .tool-status"))
    # The keyboard opens it: its input and result.
    page.focus(f"{block} summary")
    page.keyboard.press("Enter")
    assert page.get_attribute(block, "open") is not None
    assert '"expression": "6 * 7"' in page.inner_text(f"{block} .tool-input")
    assert page.inner_text(f"{block} .tool-result") == "42"
    assert serious_accessibility_problems(page) == []
    page.screenshot(path=str(screenshots / "tool-call.png"))
    # The other tab saw it live; a reload shows the same.
    other.wait_for_selector(f"{REPLY}[data-status='complete'] details.tool-call[data-state='done']")
    assert parts(other) == expected
    page.reload()
    wait_ready(page)
    assert parts(page) == expected
    assert page.text_content(f"{block} .tool-result") == "42"  # collapsed again: not shown
    assert page.inner_text(f"{REPLY} .message-meta").count("coin") == 1
    other.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(
    "viewport", [PHONE, {"width": 1280, "height": 800}], ids=["phone", "desktop"]
)
def test_the_demo_models_tool_call_fits_and_passes_axe(
    browser: Any, live_server_url: str, screenshots: Path, scheme: str, viewport: dict[str, int]
) -> None:
    context = browser.new_context(
        base_url=live_server_url, bypass_csp=True, viewport=viewport, color_scheme=scheme
    )
    page = context.new_page()
    sign_up_and_open_a_chat(page, f"tools{scheme}{viewport['width']}")
    page.select_option("#model", "demo")
    send(page, "Calculate 12*(3+4) - 2^5 exactly")
    page.wait_for_selector(f"{REPLY} details.tool-call[data-state='done']", timeout=15000)
    wait_ended(page, timeout=15000)
    assert parts(page)[1] == "tool: calculator"
    assert "52" in page.inner_text(f"{REPLY} .body")  # 84 - 32, from the tool's result
    page.click(f"{REPLY} details.tool-call summary")
    assert page.inner_text(f"{REPLY} .tool-result") == "52"
    assert serious_accessibility_problems(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    if viewport is PHONE:
        page.locator(REPLY).last.evaluate("el => el.scrollIntoView({block: 'end'})")
        page.screenshot(path=str(screenshots / f"state-tool-call-{scheme}.png"))
    context.close()


def test_the_person_switches_tools_off_and_every_tab_follows(
    page: Any, provider: SSEServer
) -> None:
    assert page.is_checked("#tools-enabled")
    assert "calculator" in page.inner_text("#tools-info")
    other = page.context.new_page()
    other.goto(page.url)
    wait_ready(other)
    # The keyboard: Space on the switch.
    page.focus("#tools-enabled")
    page.keyboard.press("Space")
    assert not page.is_checked("#tools-enabled")
    other.wait_for_selector("#tools-enabled:not(:checked)")
    provider.enqueue(text_reply(["No tools here."]))
    send(page, "Add 2 and 2")
    wait_ended(page, timeout=15000)
    streamed = [r.body for r in provider.requests if r.body.get("stream")]
    assert "tools" not in streamed[-1]
    page.reload()
    wait_ready(page)
    assert not page.is_checked("#tools-enabled")
    other.close()
