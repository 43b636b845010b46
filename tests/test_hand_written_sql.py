"""chatsite/sql.py: the reply path's hand-written reads load what the ORM would."""

from __future__ import annotations

import datetime as dt
import importlib
import sys
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing import services as billing
from billing.models import CoinAccount, LedgerEntry, LlmUsage
from chat import limits, selectors, services
from chat.models import Conversation, Message, OpenSocket
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


def _written(instance: Any) -> dict[str, Any]:
    """A row's values as read back, without its key and time stamps."""
    instance.refresh_from_db()
    row = {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}
    for stamp in ("id", "created_at", "updated_at"):
        row.pop(stamp, None)
    return row


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (
            Message,
            {"role": "assistant", "status": "error", "model": "m", "byok": True},
        ),
        (
            LlmUsage,
            {
                "provider": "anthropic",
                "model": "m",
                "status": "ok",
                "usage_estimated": True,
                "cost_usd": Decimal("0.00012345"),
                "time_to_first_token_ms": None,
                "output_tokens": 12,
            },
        ),
    ],
)
def test_an_insert_writes_the_row_the_orm_would(alice: Any, model: Any, values: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="m")
    owner = {"conversation_id": conversation.pk} if model is Message else {"user_id": alice.pk}

    by_orm = model.objects.create(**owner, **values)
    by_sql = model.objects.get(pk=sql.Insert(model).row(**owner, **values))

    # Defaults, booleans and decimals come back as the ORM's own did.
    assert _written(by_sql) == _written(by_orm)
    for stamp in ("created_at", "updated_at"):
        if hasattr(by_sql, stamp):
            assert abs(getattr(by_sql, stamp) - getattr(by_orm, stamp)) < dt.timedelta(seconds=5)


def test_an_inserted_instance_loads_the_rest_when_read(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="m")

    message = sql.Insert(Message).create(conversation_id=conversation.pk, role="user", content="Hi")

    assert (message.role, message.content) == ("user", "Hi")
    assert "created_at" in message.get_deferred_fields()
    assert message.created_at == Message.objects.get(pk=message.pk).created_at
    assert message.status == "complete"  # the field's default, fetched


def test_rows_inserted_together_are_written_in_order_as_one_at_a_time_would_be(
    alice: Any,
) -> None:
    conversation = Conversation.objects.create(owner=alice, model="m")
    insert = sql.Insert(Message)
    one = Message.objects.get(
        pk=insert.row(conversation_id=conversation.pk, content="a", role="user")
    )

    insert.rows(
        {"conversation_id": conversation.pk, "content": "b", "role": "assistant"},
        {"conversation_id": conversation.pk, "content": "c", "role": "user"},
    )
    insert.rows()  # nothing to write: no statement

    first, second = Message.objects.filter(content__in=["b", "c"]).order_by("pk")
    assert (first.content, first.role, second.content, second.role) == (
        "b",
        "assistant",
        "c",
        "user",
    )
    assert _written(second) | {"content": "a"} == _written(one)


def test_an_insert_refuses_fields_it_cannot_set() -> None:
    insert = sql.Insert(Message)
    with pytest.raises(TypeError, match="contnet"):
        insert.row(conversation_id=1, role="user", contnet="typo")
    with pytest.raises(TypeError, match="created_at"):
        insert.row(conversation_id=1, role="user", created_at=None)  # stamped with the time


def test_an_insert_under_a_used_unique_value_fails(alice: Any) -> None:
    billing.account_open(user_id=alice.pk)
    used = LedgerEntry.objects.get(reference=f"signup:{alice.pk}")
    with pytest.raises(IntegrityError), transaction.atomic():
        sql.Insert(LedgerEntry).row(
            account_id=used.account_id,
            kind="grant",
            amount=1,
            balance_after=1,
            reference=used.reference,
            reason="again",
        )


def test_an_insert_if_new_writes_nothing_under_a_used_unique_value(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="m")
    insert = sql.Insert(Message)
    sent = {"conversation_id": conversation.pk, "role": "user", "client_id": "c-1"}

    first = insert.create_if_new(**sent, content="first")
    again = insert.create_if_new(**sent, content="again")  # the partial unique constraint
    other = insert.create_if_new(**sent | {"client_id": "c-2"}, content="other")

    assert first is not None and other is not None and again is None
    assert first.content == "first"
    stored = Message.objects.filter(conversation=conversation).order_by("pk")
    assert [(m.pk, m.content) for m in stored] == [(first.pk, "first"), (other.pk, "other")]
    # Outside the constraint's condition (no client_id) rows are written every time.
    assert insert.row_if_new(conversation_id=conversation.pk, role="user") is not None
    assert insert.row_if_new(conversation_id=conversation.pk, role="user") is not None


def test_statements_share_one_cursor_and_a_debug_one_while_queries_are_logged(
    alice: Any,
) -> None:
    query = "SELECT COUNT(*) FROM auth_user WHERE id = %s"
    assert sql.one(query, [alice.pk]) == (1,)
    reused = sql.cursor()
    assert sql.one(query, [alice.pk]) == (1,) and sql.cursor() is reused

    with CaptureQueriesContext(connection) as captured:  # a debug cursor while queries are logged
        assert sql.every(query, [alice.pk]) == [(1,)]
    assert [q["sql"] for q in captured.captured_queries] == [query % alice.pk]
    assert type(sql.cursor()) is type(reused)  # and, queries no longer logged, a plain one


def _prepared_on_this_connection() -> set[str]:
    with connection.cursor() as orm:  # the ORM's cursor: binds on the client, never prepares
        orm.execute("SELECT statement FROM pg_prepared_statements")
        return {statement for (statement,) in orm.fetchall()}


def test_statements_bind_on_the_server_and_are_prepared_once_run_often_on_postgresql(
    alice: Any,
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL binds and prepares statements on the server")
    query = "SELECT username FROM auth_user WHERE id = %s"
    # The value goes apart from the text, which the server knows under its placeholder.
    on_the_server = query.replace("%s", "$1")
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    for _ in range(threshold):
        assert sql.one(query, [alice.pk]) == (alice.username,)
    assert on_the_server not in _prepared_on_this_connection()
    assert sql.one(query, [alice.pk]) == (alice.username,)
    assert on_the_server in _prepared_on_this_connection()
    # The ORM's own cursors still bind on the client and prepare nothing.
    before = _prepared_on_this_connection()
    for _ in range(threshold + 1):
        assert list(Conversation.objects.filter(owner=alice)) == []
    assert _prepared_on_this_connection() == before


@pytest.mark.django_db(transaction=True)
def test_the_shared_cursor_is_always_the_current_connections(alice: Any) -> None:
    query = "SELECT COUNT(*) FROM auth_user WHERE id = %s"
    assert sql.one(query, [alice.pk]) == (1,)
    assert sql.cursor().cursor.connection is connection.connection
    # A trip to the database thread ends so: the connection is closed (SQLite) or handed back
    # to the pool (PostgreSQL), and the next statement runs on whichever comes next.
    connection.close()
    assert sql.one(query, [alice.pk]) == (1,)
    assert sql.cursor().cursor.connection is connection.connection


async def test_statements_refuse_to_run_in_the_event_loop() -> None:
    with pytest.raises(SynchronousOnlyOperation):
        sql.one("SELECT 1", [])


def test_no_model_written_by_hand_has_save_signals() -> None:
    """Insert sends no signals: a receiver added for one of its models would never run."""
    for module in ("chat.services", "chat.limits", "billing.services"):
        importlib.import_module(module)
    inserts = {
        f"{name}.{attribute}": value
        for name, module in list(sys.modules.items())
        if name.partition(".")[0] in {"chat", "billing", "providers", "chatsite"}
        for attribute, value in vars(module).items()
        if isinstance(value, sql.Insert)
    }
    # The reply path's own (a socket's row, two messages, three entries, one usage row).
    assert {insert.model for insert in inserts.values()} >= {
        Message,
        LedgerEntry,
        LlmUsage,
        OpenSocket,
    }
    for where, insert in inserts.items():
        assert not pre_save.has_listeners(insert.model), where
        assert not post_save.has_listeners(insert.model), where


def _prepared_in_full(insert: sql.Insert[Any], values: dict[str, Any], now: Any) -> list[Any]:
    """Every value through its field's `get_db_prep_save`, as the ORM's insert prepares it."""
    params = []
    for field in insert.fields:
        if field.attname in values:
            value = values[field.attname]
        elif field.attname in insert._stamped:
            value = now
        else:
            value = field.get_default()
        params.append(field.get_db_prep_save(value, connection))
    return params


def _outcome(prepare: Any) -> Any:
    """The values prepared, each with its type (PostgreSQL's integer types compare equal to
    int), or the kind of error preparing them raised."""
    try:
        return [(type(value), value) for value in prepare()]
    except Exception as exc:
        return type(exc)


_INSERTS = [limits._NEW_SOCKET, services._NEW_MESSAGE, billing._NEW_ENTRY, billing._NEW_USAGE]
_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=20),
    st.sampled_from([*Message.Role, *Message.Status, *LedgerEntry.Kind]),
    st.decimals(allow_nan=False, allow_infinity=False, places=8, max_value=10**6),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.floats(allow_nan=False),
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_an_insert_prepares_each_value_as_its_field_would(data: Any) -> None:
    """Insert leaves out Django's preparing steps where they return the value as it is (text,
    whole numbers, booleans and keys): what it sends must be what they would have, of the same
    type, on this database; a value they refuse is refused as they refuse it."""
    insert = data.draw(st.sampled_from(_INSERTS))
    names = sorted(insert._settable)
    values = data.draw(st.dictionaries(st.sampled_from(names), _ANY_VALUE, max_size=len(names)))
    now = timezone.now()

    assert _outcome(lambda: insert._params(values, now)) == _outcome(
        lambda: _prepared_in_full(insert, values, now)
    )
