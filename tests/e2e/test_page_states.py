"""The conversation page in each of its states, on a phone and a desktop, in light and dark:
no serious or critical axe-core violation in any, nothing wider than the screen, and a
screenshot of each on a phone (the README shows them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import sign_up_and_open_a_chat
from tests.e2e.test_browser import PHONE, send, serious_accessibility_problems, wait_ended
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.browser

SHOWN_REPLY = "li.message--assistant:not([hidden])"
RICH = (
    "Here is the plan, with code:\n\n```python\n"
    + "".join(f"step_{i} = compute(step_{i - 1}, factor={i}) if i else seed()  # long line\n"
              for i in range(12))
    + "```\n\n| step | cost |\n|:--|--:|\n| one | 1.50 |\n| two | 12.25 |\n\n> Done."
)  # fmt: skip


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(
    "viewport", [PHONE, {"width": 1280, "height": 800}], ids=["phone", "desktop"]
)
def test_every_state_of_a_conversation_passes_axe_and_fits(
    browser: Any,
    live_server_url: str,
    provider: SSEServer,
    screenshots: Path,
    scheme: str,
    viewport: dict[str, int],
) -> None:
    context = browser.new_context(
        base_url=live_server_url, bypass_csp=True, viewport=viewport, color_scheme=scheme
    )
    page = context.new_page()
    sign_up_and_open_a_chat(page, f"states{scheme}{viewport['width']}")
    phone = viewport is PHONE
    problems: dict[str, list[str]] = {}

    def look(state: str) -> None:
        problems[state] = serious_accessibility_problems(page)
        if page.evaluate("document.documentElement.scrollWidth") > viewport["width"]:
            problems[state].append("wider than the screen")
        if phone:
            # The latest reply in view, as a person reading it has it.
            page.locator(SHOWN_REPLY).last.evaluate("el => el.scrollIntoView({block: 'end'})")
            page.screenshot(path=str(screenshots / f"state-{state}-{scheme}.png"))

    # Streaming, with thinking above it.
    provider.enqueue(
        text_reply(
            [f"word{i} " for i in range(300)], thinking=["Weighing ", "the options."], delay=0.03
        )
    )
    send(page, "Think, then write at length")
    page.wait_for_selector(f"{SHOWN_REPLY} .body:has-text('word20')")
    look("streaming")
    # Stopped (Escape).
    page.keyboard.press("Escape")
    page.wait_for_selector(f"{SHOWN_REPLY}[data-status='stopped']")
    page.wait_for_selector(f"{SHOWN_REPLY} .message-meta:has-text('coin')")
    look("stopped")
    # An error part of the way, with Retry.
    provider.enqueue(text_reply(["Half ", "of it"], error_after=2))
    send(page, "Fail, please")
    page.wait_for_selector(f"{SHOWN_REPLY} .retry:not([hidden])")
    look("error")
    # Long code and a table, then a second version of that reply.
    provider.enqueue(text_reply([RICH[:60], RICH[60:]]), text_reply(["A shorter take."]))
    send(page, "The plan, with code and a table")
    wait_ended(page, timeout=15000)
    page.wait_for_selector(f"{SHOWN_REPLY} pre code.hljs")
    look("code-and-table")
    page.locator(f"{SHOWN_REPLY} .regenerate").last.click()
    page.wait_for_selector(f"{SHOWN_REPLY} .body:has-text('A shorter take.')")
    wait_ended(page, timeout=15000)
    look("versions")
    context.close()
    failed = {state: found for state, found in problems.items() if found}
    assert failed == {}, "\n".join(f"{state}: {found}" for state, found in failed.items())
