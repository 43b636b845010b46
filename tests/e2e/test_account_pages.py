"""The account pages in Chromium, as a person on a phone meets them, under the real CSP:
log-in throttling's page and password reset."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import Server, manage

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The lockout page's own status, 429, is the one failed load expected here.
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "429" not in m.text else None,
    )
    yield page
    context.close()
    assert errors == []


def _fits(page: Any) -> bool:
    """No horizontal scroll. On a phone a wider page widens the layout viewport itself, so the
    page is compared with the screen's width, not innerWidth."""
    return bool(page.evaluate(f"document.documentElement.scrollWidth <= {PHONE['width']}"))


def _sign_up(page: Any, base: str, username: str, email: str = "") -> None:
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_username", username)
    if email:
        page.fill("#id_email", email)
    page.fill("#id_password1", "phone-pass-phrase-7")
    page.fill("#id_password2", "phone-pass-phrase-7")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/chat/")
    page.context.clear_cookies()  # signed out (the phone layout's header is issue 27's)
    page.goto(f"{base}/accounts/login/")


def test_too_many_wrong_passwords_show_a_clear_page_that_fits_a_phone(
    phone: Any, e2e_env: dict[str, str], screenshots: Path
) -> None:
    server = Server({**e2e_env, "LOGIN_FAILURE_LIMIT": "3"}, "lockout")
    try:
        username = f"guessed{time.time_ns()}"
        _sign_up(phone, server.url, username)
        for _ in range(3):
            phone.fill("#id_username", username)
            phone.fill("#id_password", "not-the-password")
            with phone.expect_navigation():
                phone.keyboard.press("Enter")  # the keyboard is enough
        heading = phone.locator("h1")
        assert heading.inner_text() == "Too many failed log-ins"
        text = phone.inner_text("main")
        assert "3 wrong passwords" in text and "15 minutes" in text
        assert phone.locator("a:has-text('reset your password')").count() == 1
        assert _fits(phone)
        phone.screenshot(path=str(screenshots / "locked-out.png"))
    finally:
        server.stop()
        # The lockout counts 127.0.0.1 too, which every other test logs in from.
        manage(e2e_env, "axes_reset")


def test_a_forgotten_password_is_reset_from_the_log_in_page(
    phone: Any, e2e_env: dict[str, str], live_server_url: str
) -> None:
    username = f"forgetful{time.time_ns()}"
    _sign_up(phone, live_server_url, username, email=f"{username}@example.com")
    with phone.expect_navigation():
        phone.click("a:has-text('Forgot your password?')")
    assert phone.locator("h1").inner_text() == "Reset your password"
    assert _fits(phone)
    phone.fill("#id_email", f"{username}@example.com")
    with phone.expect_navigation():
        phone.click("button:has-text('Send the link')")
    assert phone.locator("h1").inner_text() == "Check your email"
