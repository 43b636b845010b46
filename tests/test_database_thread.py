"""The bridge to the database thread (chatsite/database_thread.py) behaves as Channels'
`database_sync_to_async`: the same thread, errors, context variables and closing of old
connections, and asgiref's choice of another thread where it would make one."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import AsyncIterator

import channels.db
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection

from chatsite import database_thread

# The database thread keeps its connection from test to test: every test may touch it.
pytestmark = pytest.mark.django_db(transaction=True)

_ASKED_BY: contextvars.ContextVar[str] = contextvars.ContextVar("asked_by", default="nobody")


async def test_calls_run_in_the_thread_database_sync_to_async_uses() -> None:
    theirs = await database_sync_to_async(threading.get_ident)()
    ours = await database_thread.call(threading.get_ident)
    assert ours == theirs
    assert ours != threading.get_ident()


async def test_arguments_go_in_and_the_result_comes_back() -> None:
    def join(*parts: str, sep: str) -> str:
        return sep.join(parts)

    assert await database_thread.call(join, "a", "b", sep="+") == "a+b"


async def test_an_error_of_the_call_is_raised_to_the_caller() -> None:
    def fail() -> None:
        raise LookupError("not there")

    with pytest.raises(LookupError, match="not there"):
        await database_thread.call(fail)


async def test_a_stop_iteration_of_the_call_is_raised_as_a_runtime_error() -> None:
    """A future cannot carry StopIteration (it would leave the caller waiting for ever); as
    a coroutine's, it comes out as a RuntimeError caused by it."""

    def exhausted() -> int:
        return next(iter([]))

    with pytest.raises(RuntimeError) as raised:
        await asyncio.wait_for(database_thread.call(exhausted), timeout=10)
    assert isinstance(raised.value.__cause__, StopIteration)


async def test_the_call_sees_the_callers_context_variables() -> None:
    _ASKED_BY.set("the consumer")
    assert await database_thread.call(_ASKED_BY.get) == "the consumer"


async def test_a_cancelled_caller_stops_waiting_and_the_call_still_ends() -> None:
    started, finished = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        time.sleep(0.2)
        finished.set()
        return "done"

    waiting = asyncio.ensure_future(database_thread.call(slow))
    await asyncio.to_thread(started.wait, 5)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await asyncio.to_thread(finished.wait, 5)
    # The thread is free again, and nothing was left to fail in the loop.
    assert await database_thread.call(lambda: "next") == "next"


class _Closes:
    """Counts the closes asked of the database thread's connection (the test database, in
    memory on SQLite, ignores them: Django would lose it)."""

    def __init__(self) -> None:
        self.count = 0

    def watch(self) -> None:
        get_user_model().objects.exists()
        self.original, self.close_at = connection.close, connection.close_at
        connection.close = self._close  # type: ignore[method-assign]
        # Kept from call to call (as on SQLite) until a test sets its age: on PostgreSQL the
        # site's connections are closed after every trip (CONN_MAX_AGE 0, back to the pool).
        connection.close_at = None

    def _close(self) -> None:
        self.count += 1
        self.original()

    def forget(self) -> None:
        del connection.close
        connection.close_at = self.close_at


@pytest.fixture
async def closes(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[_Closes]:
    # Channels' test communicator swaps in a no-op while it waits, and two overlapping in one
    # test can leave the swap in place; the real one is what production runs.
    monkeypatch.setattr(channels.db, "close_old_connections", close_old_connections)
    watching = _Closes()
    await database_thread.call(watching.watch)
    yield watching
    await database_thread.call(watching.forget)


async def test_a_connection_past_its_age_is_closed_after_the_call(closes: _Closes) -> None:
    def past_its_age() -> None:
        connection.close_at = time.monotonic() - 1

    await database_thread.call(past_its_age)
    assert closes.count == 1


async def test_a_connection_that_aged_while_idle_is_closed_before_the_call(
    closes: _Closes,
) -> None:
    def age_soon() -> None:
        connection.close_at = time.monotonic() + 0.3

    await database_thread.call(age_soon)
    assert closes.count == 0
    await asyncio.sleep(0.4)
    closed_before = await database_thread.call(lambda: closes.count)
    assert closed_before == 1


def test_under_async_to_sync_the_call_runs_in_the_calling_sync_thread() -> None:
    """asgiref runs a thread-sensitive call from code under `async_to_sync` in the sync thread
    above it (which may hold the connection's transaction): so does `call`."""

    async def where() -> int:
        return await database_thread.call(threading.get_ident)

    assert async_to_sync(where)() == threading.get_ident()


async def test_inside_a_sync_thread_from_sync_to_async_the_choice_is_asgirefs() -> None:
    def nested() -> tuple[int, int]:
        async def where() -> int:
            return await database_thread.call(threading.get_ident)

        return threading.get_ident(), async_to_sync(where)()

    # Sent to the single thread instead, the call would wait for that thread's own caller.
    outer, inner = await asyncio.wait_for(sync_to_async(nested)(), timeout=30)
    assert inner == outer
