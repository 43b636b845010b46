"""Versions of messages on the page, in Chromium: regenerate, edit, switching with the mouse
and the keyboard, in two tabs and after a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import sign_up_and_open_a_chat, wait_ready
from tests.e2e.test_browser import send, serious_accessibility_problems
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.browser

SHOWN_REPLY = "li.message--assistant:not([hidden])"
SHOWN_QUESTION = "li.message--user:not([hidden])"


def shown(page: Any, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(f"{selector} .body").all_inner_texts()]


def wait_idle(page: Any) -> None:
    """No reply streams and the last one shown has ended, painted."""
    page.wait_for_selector(f"{SHOWN_REPLY}:last-of-type:not([data-status='streaming'])")
    page.wait_for_selector(f"{SHOWN_REPLY}[data-status]:not([data-status='streaming'])")
    page.wait_for_selector("#indicator", state="hidden")
    page.evaluate("new Promise((painted) => requestAnimationFrame(() => painted(null)))")


def wait_shown(page: Any, selector: str, texts: list[str]) -> None:
    page.wait_for_function(
        "([selector, texts]) => JSON.stringify([...document.querySelectorAll(selector + ' .body')]"
        ".map((el) => el.textContent.trim())) === JSON.stringify(texts)",
        arg=[selector, texts],
    )


def test_regenerate_keeps_both_versions_and_every_tab_follows_a_switch(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    provider.enqueue(text_reply(["First ", "answer."]), text_reply(["Second ", "answer."]))
    send(page, "Tell me")
    wait_shown(page, SHOWN_REPLY, ["First answer."])
    wait_idle(page)
    page.click(f"{SHOWN_REPLY} .regenerate")
    wait_shown(page, SHOWN_REPLY, ["Second answer."])
    wait_idle(page)
    versions = f"{SHOWN_REPLY} .versions"
    assert page.inner_text(f"{versions} .version-count") == "2 / 2"
    assert page.get_attribute(versions, "aria-label") == "Version 2 of 2"
    assert page.is_disabled(f"{versions} .version-next")
    # Upstream the second time: only the question, not the first answer.
    streamed = [r.body for r in provider.requests if r.body.get("stream")]
    assert streamed[-1]["messages"] == [{"role": "user", "content": "Tell me"}]
    page.screenshot(path=str(screenshots / "versions.png"))

    other = page.context.new_page()
    other.goto(page.url)
    wait_ready(other)
    wait_shown(other, SHOWN_REPLY, ["Second answer."])

    # The keyboard: Tab to "previous version", Enter; focus stays on the versions' controls.
    page.focus(f"{versions} .version-prev")
    page.keyboard.press("Enter")
    wait_shown(page, SHOWN_REPLY, ["First answer."])
    assert page.inner_text(f"{versions} .version-count") == "1 / 2"
    focused = page.evaluate("document.activeElement.closest('.versions') !== null")
    assert focused and page.evaluate("document.activeElement.closest('li').hidden") is False
    # The other tab follows, and a reload shows the version chosen.
    wait_shown(other, SHOWN_REPLY, ["First answer."])
    other.reload()
    wait_ready(other)
    wait_shown(other, SHOWN_REPLY, ["First answer."])
    assert other.inner_text(f"{versions} .version-count") == "1 / 2"
    assert serious_accessibility_problems(page) == []
    other.close()


def test_edit_makes_a_new_version_of_a_message_and_a_reply_and_keeps_the_old_ones(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    provider.enqueue(text_reply(["One."]), text_reply(["Two."]), text_reply(["Two, again."]))
    send(page, "First question")
    wait_shown(page, SHOWN_REPLY, ["One."])
    wait_idle(page)
    send(page, "Second question")
    wait_shown(page, SHOWN_REPLY, ["One.", "Two."])
    wait_idle(page)

    second = f"{SHOWN_QUESTION}:nth-of-type(3)"
    page.click(f"{second} .edit")
    editor = page.locator(".editor textarea")
    assert editor.input_value() == "Second question"
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"
    # Escape cancels, keeping the message as it was (and stops no reply).
    page.keyboard.press("Escape")
    assert page.locator(".editor").count() == 0
    assert page.evaluate("document.activeElement.classList.contains('edit')")
    page.keyboard.press("Enter")  # the focused Edit button opens it again
    editor.fill("Second question, better put")
    page.screenshot(path=str(screenshots / "edit.png"))
    page.keyboard.press("Enter")
    wait_shown(page, SHOWN_QUESTION, ["First question", "Second question, better put"])
    wait_shown(page, SHOWN_REPLY, ["One.", "Two, again."])
    wait_idle(page)
    streamed = [r.body for r in provider.requests if r.body.get("stream")]
    assert streamed[-1]["messages"] == [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "One."},
        {"role": "user", "content": "Second question, better put"},
    ]
    edited = f"{SHOWN_QUESTION}:has(.versions:not([hidden]))"
    assert page.inner_text(f"{edited} .version-count") == "2 / 2"
    page.click(f"{edited} .version-prev")
    wait_shown(page, SHOWN_QUESTION, ["First question", "Second question"])
    wait_shown(page, SHOWN_REPLY, ["One.", "Two."])
    # The next message follows the version on screen.
    provider.enqueue(text_reply(["Three."]))
    send(page, "Third question")
    wait_shown(page, SHOWN_REPLY, ["One.", "Two.", "Three."])
    wait_idle(page)
    streamed = [r.body for r in provider.requests if r.body.get("stream")]
    assert [m["content"] for m in streamed[-1]["messages"]] == [
        "First question",
        "One.",
        "Second question",
        "Two.",
        "Third question",
    ]


def test_versions_fit_a_phone_and_pass_axe_in_the_dark(
    browser: Any, live_server_url: str, provider: SSEServer, screenshots: Path
) -> None:
    context = browser.new_context(
        base_url=live_server_url,
        bypass_csp=True,
        viewport={"width": 390, "height": 844},
        color_scheme="dark",
        has_touch=True,
        is_mobile=True,
    )
    phone = context.new_page()
    sign_up_and_open_a_chat(phone, "phone")
    provider.enqueue(text_reply(["A first take."]), text_reply(["A second take."]))
    send(phone, "Two takes, please")
    wait_shown(phone, SHOWN_REPLY, ["A first take."])
    wait_idle(phone)
    phone.click(f"{SHOWN_REPLY} .regenerate")
    wait_shown(phone, SHOWN_REPLY, ["A second take."])
    wait_idle(phone)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    box = phone.locator(f"{SHOWN_REPLY} .version-prev").bounding_box()
    assert box is not None and box["height"] >= 44
    assert serious_accessibility_problems(phone) == []
    phone.screenshot(path=str(screenshots / "phone-versions.png"))
    context.close()


def test_a_reply_streams_on_while_another_version_is_shown_and_after_a_reload(
    page: Any, provider: SSEServer
) -> None:
    provider.enqueue(text_reply(["Short one."]))
    send(page, "Write me something")
    wait_shown(page, SHOWN_REPLY, ["Short one."])
    wait_idle(page)
    chunks = [f"slow{i} " for i in range(120)]
    provider.enqueue(text_reply(chunks, delay=0.03))
    page.click(f"{SHOWN_REPLY} .regenerate")
    page.wait_for_selector(f"{SHOWN_REPLY} .body:has-text('slow3')")
    # While it streams, look at the first version; then reload, still mid-reply.
    page.click(f"{SHOWN_REPLY} .version-prev")
    wait_shown(page, SHOWN_REPLY, ["Short one."])
    assert page.is_visible("#indicator")  # a reply is still being written, on the other branch
    page.reload()
    wait_ready(page)
    wait_shown(page, SHOWN_REPLY, ["Short one."])
    assert page.inner_text(f"{SHOWN_REPLY} .version-count") == "1 / 2"
    page.click(f"{SHOWN_REPLY} .version-next")
    page.wait_for_selector("#indicator", state="hidden", timeout=15000)
    wait_shown(page, SHOWN_REPLY, ["".join(chunks).strip()])
