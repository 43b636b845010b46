"""The account pages: log-in throttling (django-axes: failures counted per account and per
address, a clear page, an admin view of lockouts) and password reset (offered only when the
site can send mail; sign-up takes an optional email address for it)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

pytestmark = pytest.mark.django_db


def _log_in(username: str, password: str, address: str = "203.0.113.7") -> Any:
    return Client(REMOTE_ADDR=address).post(
        "/accounts/login/", {"username": username, "password": password}
    )


def test_wrong_passwords_lock_the_account_out_with_a_clear_page(alice: Any, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert _log_in("alice", "wrong").status_code == 200  # the form again, with its error
    assert _log_in("alice", "wrong").status_code == 429  # the third reaches the limit
    # Now even the right password, even from elsewhere, waits out the cool-off.
    locked = _log_in("alice", "alice-password-1", address="198.51.100.9")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed log-ins" in page and "15 minutes" in page
    assert "alice-password-1" not in page


def test_failures_from_one_address_lock_that_address_out(
    alice: Any, bob: Any, settings: Any
) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for name in ("nobody", "someone", "anyone"):
        _log_in(name, "guess", address="192.0.2.66")
    assert _log_in("bob", "bob-password-1", address="192.0.2.66").status_code == 429
    # Another address is not held up by it.
    assert _log_in("bob", "bob-password-1", address="192.0.2.67").status_code == 302


def test_a_good_log_in_clears_earlier_failures(alice: Any, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        _log_in("alice", "wrong")
    assert _log_in("alice", "alice-password-1").status_code == 302
    for _ in range(2):
        _log_in("alice", "wrong")
    assert _log_in("alice", "alice-password-1").status_code == 302


def test_an_admin_sees_lockouts_and_lifts_one(
    alice: Any, admin_client: Client, settings: Any
) -> None:
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        _log_in("alice", "wrong")
    listing = admin_client.get("/admin/axes/accessattempt/").content.decode()
    assert "alice" in listing and "203.0.113.7" in listing
    assert "wrong" not in listing  # no password kept
    AccessAttempt.objects.filter(username="alice").delete()  # what the admin's delete does
    assert _log_in("alice", "alice-password-1").status_code == 302


def test_without_mail_password_reset_is_not_offered(client: Client, settings: Any) -> None:
    settings.PASSWORD_RESET_ENABLED = False
    assert "Forgot your password?" not in client.get("/accounts/login/").content.decode()
    assert client.get("/accounts/password_reset/").status_code == 404
    assert client.post("/accounts/password_reset/", {"email": "a@example.com"}).status_code == 404


def test_with_mail_a_reset_link_reaches_the_address_given_at_sign_up(
    client: Client, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PASSWORD_RESET_ENABLED = True
    signup = {
        "username": "carol",
        "email": "carol@example.com",
        "password1": "a-long-pass-phrase-9",
        "password2": "a-long-pass-phrase-9",
    }
    assert client.post("/accounts/signup/", signup).status_code == 302
    assert get_user_model().objects.get(username="carol").email == "carol@example.com"
    client.post("/accounts/logout/")
    assert "Forgot your password?" in client.get("/accounts/login/").content.decode()
    response = client.post("/accounts/password_reset/", {"email": "carol@example.com"})
    assert response.status_code == 302
    assert "Check your email" in client.get(response["Location"]).content.decode()
    assert [m.to for m in mail.outbox] == [["carol@example.com"]]
    link = re.search(r"/accounts/reset/\S+/", str(mail.outbox[0].body))
    assert link is not None
    form = client.get(link.group(0), follow=True)
    assert "Choose a new password" in form.content.decode()
    new = {"new_password1": "another-pass-phrase-7", "new_password2": "another-pass-phrase-7"}
    done = client.post(form.redirect_chain[-1][0], new, follow=True)
    assert "Password changed" in done.content.decode()
    assert _log_in("carol", "another-pass-phrase-7").status_code == 302
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
