"""Export: the current branch as Markdown, the whole tree as JSON with each reply's model,
times, tokens and coins; only the owner's, and never a deleted one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from billing.models import LlmUsage
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def branched(alice: Any) -> dict[str, Any]:
    """Q -> (old answer | new answer, current), the new one with thinking and a retry."""
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5", title="Trip")
    question = Message.objects.create(conversation=conversation, role="user", content="Where?")
    old = Message.objects.create(
        conversation=conversation, role="assistant", content="Porto.", parent=question,
        model="claude-sonnet-5-5", provider="anthropic", input_tokens=10, output_tokens=2,
    )  # fmt: skip
    new = Message.objects.create(
        conversation=conversation, role="assistant", content="Lisbon, **surely**.",
        thinking="Sunny\nand near", parent=question, model="claude-haiku-5-5",
        provider="anthropic", input_tokens=10, output_tokens=5,
    )  # fmt: skip
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=new)
    for message, coins in ((old, 3), (new, 2), (new, 4)):
        LlmUsage.objects.create(
            user=alice, conversation_id=conversation.pk, message_id=message.pk,
            provider="anthropic", model=message.model, status="ok", coins_charged=coins,
        )  # fmt: skip
    LlmUsage.objects.create(
        user=alice, conversation_id=conversation.pk, message_id=new.pk, provider="anthropic",
        model="claude-haiku-5-5", status="ok", coins_charged=1, purpose="title",
    )  # fmt: skip
    return {"conversation": conversation, "question": question, "old": old, "new": new}


def _client(person: Any) -> Client:
    client = Client()
    client.force_login(person)
    return client


def test_markdown_is_the_current_branch(alice: Any, branched: dict[str, Any]) -> None:
    conversation = branched["conversation"]
    response = _client(alice).get(f"/chat/{conversation.pk}/export.md")
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="trip-{conversation.pk}.md"'
    text = response.content.decode()
    assert text.startswith("# Trip\n")
    assert "## You\n\nWhere?" in text
    assert (
        "## Claude Haiku 5.5\n\n> **Thinking**\n>\n> Sunny\n> and near\n\nLisbon, **surely**."
        in text
    )
    assert "10 tokens in, 5 out · 6 coins" in text  # both of its calls, not the title's
    assert "Porto." not in text


def test_json_is_the_whole_tree_with_each_reply_s_figures(
    alice: Any, branched: dict[str, Any]
) -> None:
    conversation = branched["conversation"]
    response = _client(alice).get(f"/chat/{conversation.pk}/export.json")
    assert response["Content-Disposition"].endswith(f'-{conversation.pk}.json"')
    data = json.loads(response.content)
    question, old, new = branched["question"], branched["old"], branched["new"]
    assert data["conversation"]["current_branch"] == [question.pk, new.pk]
    by_id = {m["id"]: m for m in data["messages"]}
    assert set(by_id) == {question.pk, old.pk, new.pk}
    assert by_id[old.pk]["parent_id"] == by_id[new.pk]["parent_id"] == question.pk
    assert (by_id[old.pk]["coins"], by_id[new.pk]["coins"]) == (3, 6)
    assert by_id[new.pk]["model"] == "claude-haiku-5-5" and by_id[new.pk]["output_tokens"] == 5
    assert by_id[new.pk]["thinking"] == "Sunny\nand near" and "created_at" in by_id[old.pk]
    assert "coins" not in by_id[question.pk]


def test_export_is_the_owner_s_only(alice: Any, bob: Any, branched: dict[str, Any]) -> None:
    conversation = branched["conversation"]
    for kind in ("md", "json"):
        foreign = _client(bob).get(f"/chat/{conversation.pk}/export.{kind}")
        missing = _client(bob).get(f"/chat/999999/export.{kind}")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content
    Conversation.objects.filter(pk=conversation.pk).update(deleted_at="2026-01-01T00:00:00Z")
    assert _client(alice).get(f"/chat/{conversation.pk}/export.json").status_code == 404
