"""No log line holds a key, a session id or a person's prompt, at any log level."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import runner
from chat.models import Conversation
from providers.services import provider_key_save
from tests.chat.helpers import connect, send, signed_in_session, until_end
from tests.fakes.anthropic import error_response, text_reply
from tests.fakes.models_list import ANTHROPIC_MODELS
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "sk-ant-api03-own-key-never-logged-5150"
PROMPT = "PRIVATE-PROMPT: my bank account number is 12345678"


def _assert_clean(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    lines = [record.getMessage() for record in caplog.records]
    lines += [caplog.text]
    for secret in secrets:
        assert not any(secret in line for line in lines), secret


async def test_a_reply_an_error_and_a_retry_log_no_key_session_or_prompt(
    alice: Any, anthropic_server: SSEServer, caplog: pytest.LogCaptureFixture, waits: list[float]
) -> None:
    await database_sync_to_async(provider_key_save)(
        user_id=alice.pk, provider="anthropic", key=KEY, verified=True
    )
    session = await database_sync_to_async(signed_in_session)(alice)
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    anthropic_server.enqueue(
        text_reply(["Noted."]),
        error_response(401, "authentication_error", f"invalid x-api-key {KEY}"),
        error_response(529, "overloaded_error", "Overloaded"),
        text_reply(["Half"], error_after=1),
    )
    with caplog.at_level(logging.DEBUG):
        tab = await connect(alice, conversation, session)
        for _ in range(3):
            await send(tab, type="send", content=PROMPT)
            await until_end(tab)
            await runner.wait_for_replies()
        await tab.disconnect()
    assert caplog.records  # the run did log (so the check below means something)
    _assert_clean(caplog, KEY, KEY[-12:], session.session_key, "12345678")


def test_saving_testing_and_failing_keys_logs_no_key(
    alice: Any, anthropic_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client()
    client.force_login(alice)
    session_key = client.cookies["sessionid"].value
    anthropic_server.enqueue(
        ANTHROPIC_MODELS, error_response(401, "authentication_error", f"bad key {KEY}")
    )
    with caplog.at_level(logging.DEBUG):
        client.post("/settings/keys/", {"action": "save", "provider": "anthropic", "key": KEY})
        client.post("/settings/keys/", {"action": "test", "provider": "anthropic"})
        client.get("/chat/does-not-exist/")
    _assert_clean(caplog, KEY, KEY[-12:], session_key)


def test_error_reports_hide_the_key_field(
    alice: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash while saving a key: Django's error report (the DEBUG page, the admins' mail)
    shows the field masked."""
    from providers import views

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(views, "_save", crash)
    settings.DEBUG = True  # the technical 500 page is the error report, rendered
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    response = client.post(
        "/settings/keys/", {"action": "save", "provider": "anthropic", "key": KEY}
    )
    assert response.status_code == 500
    report = response.content.decode()
    assert "RuntimeError" in report and "boom" in report
    assert KEY not in report and KEY[-12:] not in report
