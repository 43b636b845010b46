"""The bridge from the event loop to the thread that runs the websocket and reply work's
database calls.

Channels' `database_sync_to_async` runs each call in asgiref's one shared thread (its
`single_thread_executor`), closing old connections before and after, as Django does around a
request. On the way it spends CPU on asgiref's per-call machinery (thread-sensitivity lookups,
two futures chained across the threads, its context restoring), in the event loop's thread or
holding the GIL that every stream shares: a reply makes two trips and its socket two.
`call` makes the same trip, to the same thread, with the same closing of old connections and
the caller's context variables, and hands the result back with one `call_soon_threadsafe`:
about 70 µs less CPU per trip (`bench.db_bridge`, around one SELECT: 284 against 213 µs on
SQLite, 469 against 387 on PostgreSQL; docs/benchmarks.md, thirteenth measurement).

Where asgiref would pick another thread (the code runs under `async_to_sync`, whose sync
thread may hold the connection's transaction, or in a request's thread-sensitive context),
`call` leaves the choice to `database_sync_to_async` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import AsyncToSync, SyncToAsync
from channels import db as channels_db
from channels.db import database_sync_to_async

P = ParamSpec("P")
T = TypeVar("T")


async def call(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`await database_sync_to_async(fn)(*args, **kwargs)`, for less CPU."""
    loop = asyncio.get_running_loop()
    if not _in_the_shared_thread(loop):
        result: T = await database_sync_to_async(fn)(*args, **kwargs)
        return result
    done: asyncio.Future[T] = loop.create_future()
    job = functools.partial(fn, *args, **kwargs)
    SyncToAsync.single_thread_executor.submit(_run, loop, done, contextvars.copy_context(), job)
    # Cancelled, the caller stops waiting; the call itself runs to its end in the thread
    # (a thread cannot be interrupted), as with database_sync_to_async.
    return await done


def _in_the_shared_thread(loop: asyncio.AbstractEventLoop) -> bool:
    """Would `SyncToAsync` (thread-sensitive) run a call from here in its single thread?"""
    return (
        getattr(AsyncToSync.executors, "current", None) is None
        and SyncToAsync.thread_sensitive_context.get(None) is None
        and loop not in AsyncToSync.loop_thread_executors
    )


def _run(
    loop: asyncio.AbstractEventLoop,
    done: asyncio.Future[Any],
    context: contextvars.Context,
    job: Callable[[], Any],
) -> None:
    """In the database thread: the call between closings of old connections, as Channels'
    `DatabaseSyncToAsync.thread_handler` does, then its outcome handed to the loop."""
    try:
        # Looked up in Channels' module, as its own handler does: its test communicator swaps
        # it for a no-op while it drives a consumer.
        channels_db.close_old_connections()
        try:
            result = context.run(job)
        finally:
            channels_db.close_old_connections()
    except BaseException as exc:  # the caller re-raises it, as it would any error of the call
        _hand_back(loop, done, None, exc)
    else:
        _hand_back(loop, done, result, None)


def _hand_back(
    loop: asyncio.AbstractEventLoop,
    done: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    # RuntimeError: the loop closed meanwhile, and nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_settle, done, result, error)


def _settle(done: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if done.cancelled():
        return
    if isinstance(error, StopIteration):  # a future refuses it (the caller would wait forever)
        wrapped = RuntimeError("a database call raised StopIteration")
        wrapped.__cause__ = error
        error = wrapped
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)
