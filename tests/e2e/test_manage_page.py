"""Renaming and deleting conversations, and the list of them, in Chromium: by keyboard, in
several tabs, on a phone, with axe-core."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import sign_up_and_open_a_chat, wait_ready
from tests.e2e.test_browser import send, serious_accessibility_problems, wait_ended
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.browser


def start_chat(page: Any, provider: SSEServer, text: str) -> None:
    provider.enqueue(text_reply(["Sure."]))
    send(page, text)
    wait_ended(page, timeout=10000)


def test_rename_inline_by_keyboard_reaches_every_tab_and_the_list(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    start_chat(page, provider, "Plan my week")
    conversation_url = page.url
    other = page.context.new_page()
    other.goto(conversation_url)
    wait_ready(other)

    page.focus("#rename")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "rename-input"
    page.keyboard.press("Escape")  # cancels, and focus goes back to Rename
    assert page.is_hidden("#rename-form") and page.evaluate("document.activeElement.id") == "rename"
    page.keyboard.press("Enter")
    page.fill("#rename-input", "")
    page.keyboard.press("Enter")  # an empty title is refused by the browser, nothing is sent
    assert page.is_visible("#rename-form")
    page.fill("#rename-input", "Week plan, draft 2")
    page.screenshot(path=str(screenshots / "rename.png"))
    page.keyboard.press("Enter")
    page.wait_for_selector("#rename-form", state="hidden")
    for tab in (page, other):
        tab.wait_for_function(
            "document.querySelector('#conversation-title').textContent === 'Week plan, draft 2'"
        )
        assert tab.title() == "Week plan, draft 2"
        assert tab.inner_text('.conversation-list a[aria-current="page"]') == "Week plan, draft 2"
    other.reload()
    wait_ready(other)
    assert other.inner_text("#conversation-title") == "Week plan, draft 2"
    other.close()


def test_delete_asks_naming_the_conversation_and_every_tab_follows(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    start_chat(page, provider, "A chat to keep")
    kept_url = page.url
    page.click("#new-chat")
    wait_ready(page)
    start_chat(page, provider, "A chat to delete")
    doomed_url = page.url
    doomed_id = doomed_url.rstrip("/").rsplit("/", 1)[-1]
    showing_it = page.context.new_page()
    showing_it.goto(doomed_url)
    wait_ready(showing_it)
    elsewhere = page.context.new_page()
    elsewhere.goto(kept_url)
    wait_ready(elsewhere)
    assert elsewhere.locator(f'.conversation-list a[data-conversation-id="{doomed_id}"]').count()

    title = page.inner_text("#conversation-title")
    page.click("#delete-link")
    dialog = page.locator("#delete-dialog")
    assert dialog.is_visible()
    assert dialog.locator("h2").inner_text() == f"Delete “{title}”?"
    assert page.evaluate("document.activeElement.textContent") == "Keep it"
    assert serious_accessibility_problems(page) == []
    page.screenshot(path=str(screenshots / "delete.png"))
    page.keyboard.press("Escape")  # closes it; nothing is deleted
    assert not dialog.is_visible() and page.evaluate("document.activeElement.id") == "delete-link"
    page.keyboard.press("Enter")
    page.click("#delete-dialog button.danger")
    page.wait_for_url("**/chat/?deleted=1")
    assert page.inner_text("#deleted-notice") == "The conversation was deleted."
    assert page.locator(f'a[href="/chat/{doomed_id}/"]').count() == 0
    # The other tab on it leaves; the tab on another conversation drops it from its list.
    showing_it.wait_for_url("**/chat/?deleted=1")
    elsewhere.wait_for_function(
        f"!document.querySelector('.conversation-list a[data-conversation-id=\"{doomed_id}\"]')"
    )
    assert page.request.get(doomed_url).status == 404


def test_the_list_pages_fit_a_phone_and_pass_axe(
    browser: Any, live_server_url: str, provider: SSEServer, screenshots: Path
) -> None:
    for scheme in ("light", "dark"):
        context = browser.new_context(
            base_url=live_server_url,
            bypass_csp=True,
            viewport={"width": 390, "height": 844},
            color_scheme=scheme,
            has_touch=True,
            is_mobile=True,
        )
        phone = context.new_page()
        sign_up_and_open_a_chat(phone, f"lister-{scheme}")
        start_chat(phone, provider, "Something to list with a rather long first question")
        phone.goto("/chat/")
        assert phone.locator(".conversation-row").count() == 1
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        row_delete = phone.locator(".row-delete").bounding_box()
        assert row_delete is not None and row_delete["height"] >= 44
        assert serious_accessibility_problems(phone) == []
        # Search, from the list page's own box.
        phone.fill("#search", "rather LONG")
        phone.keyboard.press("Enter")
        phone.wait_for_selector(".search-result mark")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        assert serious_accessibility_problems(phone) == []
        if scheme == "light":
            phone.screenshot(path=str(screenshots / "phone-search.png"))
        phone.goto("/chat/")
        phone.goto(phone.locator(".row-delete").get_attribute("href"))
        assert phone.locator("h2").inner_text().startswith("Delete “")
        assert serious_accessibility_problems(phone) == []
        if scheme == "dark":
            phone.screenshot(path=str(screenshots / "phone-delete.png"))
        context.close()


def test_search_from_the_sidebar_opens_at_the_message_on_its_branch(
    page: Any, provider: SSEServer, screenshots: Path
) -> None:
    provider.enqueue(text_reply(["Try the pastel de nata in Belém."]))
    send(page, "What should I eat in Lisbon?")
    wait_ended(page, timeout=10000)
    provider.enqueue(text_reply(["Grilled sardines, in June."]))
    page.click("li.message--assistant:not([hidden]) .regenerate")
    page.wait_for_selector("li.message--assistant:not([hidden]) .body:has-text('sardines')")
    wait_ended(page, timeout=10000)
    # Search, from the sidebar, for a word of the older version (not shown now).
    page.fill("#search", "Belém NATA")
    page.keyboard.press("Enter")
    page.wait_for_url("**/chat/?q=*")
    result = page.locator(".search-result")
    assert result.count() == 1
    assert result.locator("mark").all_inner_texts() == ["nata", "Belém"]
    assert serious_accessibility_problems(page) == []
    page.screenshot(path=str(screenshots / "search.png"))
    result.locator("a").first.click()
    wait_ready(page)
    found = page.locator("li.message--found")
    assert found.is_visible() and "pastel de nata" in found.inner_text()
    assert found.locator(".version-count").inner_text() == "1 / 2"


def test_export_downloads_the_branch_as_markdown_and_the_tree_as_json(
    page: Any, provider: SSEServer
) -> None:
    provider.enqueue(text_reply(["An answer."]))
    send(page, "A question")
    wait_ended(page, timeout=10000)
    with page.expect_download() as markdown:
        page.click("text=Export Markdown")
    text = Path(markdown.value.path()).read_text()
    assert "## You\n\nA question" in text and "An answer." in text
    with page.expect_download() as tree:
        page.click("text=Export JSON")
    data = json.loads(Path(tree.value.path()).read_text())
    assert [m["content"] for m in data["messages"]] == ["A question", "An answer."]
