"""chatsite/sql.py: the reply path's hand-written reads load what the ORM would."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from billing.models import CoinAccount, LedgerEntry
from chat import selectors
from chat.models import Conversation, Message
from chatsite import sql

pytestmark = pytest.mark.django_db


def test_rows_load_the_named_fields_as_the_orm_does(alice: Any) -> None:
    made = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5", title="Plans")
    rows = sql.Rows(Conversation, ["model", "id", "owner_id"], "id = %s")

    loaded = rows.first([made.pk])

    assert isinstance(loaded, Conversation)
    assert (loaded.pk, loaded.owner_id, loaded.model) == (made.pk, alice.pk, "claude-sonnet-5-5")
    assert loaded.get_deferred_fields() == {"title", "model_note", "created_at", "updated_at"}
    # A field not loaded is fetched on first use, as for `.only()`.
    assert loaded.title == "Plans"
    assert loaded.created_at == made.created_at


def test_rows_find_nothing_as_none(alice: Any) -> None:
    rows = sql.Rows(Conversation, ["id"], "id = %s")
    assert rows.first([987_654]) is None


def test_a_locked_read_runs_in_a_transaction_on_either_database(alice: Any) -> None:
    with transaction.atomic():
        account = sql.Rows(CoinAccount, ["id", "balance"], "user_id = %s").first(
            [alice.pk], lock=True
        )
    assert account is not None and account.balance == 1000


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (Conversation, "created_at"),  # a datetime: naive text on SQLite without the ORM
        (Message, "byok"),  # a boolean: 0/1 on SQLite without the ORM
    ],
)
def test_rows_refuse_fields_the_orm_would_convert(model: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        sql.Rows(model, ["id", field], "id = %s")


def test_rows_refuse_a_field_the_model_does_not_have() -> None:
    with pytest.raises(ValueError, match="no fields"):
        sql.Rows(LedgerEntry, ["id", "amount_due"], "id = %s")


def test_the_history_sent_upstream_skips_empty_turns_in_order(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    said = [("user", "Hi"), ("assistant", ""), ("user", "Hello?"), ("assistant", "Hello!")]
    for role, content in said:
        Message.objects.create(conversation=conversation, role=role, content=content)
    later = Message.objects.create(conversation=conversation, role="user", content="Later")

    history = selectors.provider_history(conversation_id=conversation.pk, before_id=later.pk)

    assert [(m.role, m.content) for m in history] == [
        ("user", "Hi"),
        ("user", "Hello?"),
        ("assistant", "Hello!"),
    ]
