"""End the run when one test hangs, naming it last, where a CI log's tail shows it.

A hung test (a lock that is never released, a task that swallows its cancel) would otherwise
hold the run until CI's own limit, and the log would end in the middle of a stack dump. Past
TEST_HANG_LIMIT seconds in one test, this prints every thread's stack, then where the test's
thread waits and the test's name, and exits the process with a failure.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import IO, Any

import pytest

TEST_HANG_LIMIT = float(os.environ.get("TEST_HANG_LIMIT", "300"))

_current: dict[str, Any] = {"test": None, "since": None}


def _watch(out: IO[str]) -> None:
    while True:
        time.sleep(1.0)
        test, since = _current["test"], _current["since"]
        if test is not None and since is not None and time.monotonic() - since > TEST_HANG_LIMIT:
            print(f"\n\nEvery thread's stack, {TEST_HANG_LIMIT:g} s into {test}:", file=out)
            out.flush()
            faulthandler.dump_traceback(file=out, all_threads=True)
            main = sys._current_frames().get(threading.main_thread().ident or 0)
            if main is not None:
                print("\nWhere the test's thread waits (innermost last):", file=out)
                print("".join(traceback.format_stack(main)[-8:]), end="", file=out)
            print(f"\nHUNG: {test} ran for more than {TEST_HANG_LIMIT:g} s; stopping.", file=out)
            out.flush()
            os._exit(3)


def install() -> None:
    # The terminal's stderr, taken before pytest captures output.
    out = os.fdopen(os.dup(sys.stderr.fileno()), "w")
    threading.Thread(target=_watch, args=(out,), name="test-hang-watch", daemon=True).start()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _current["test"], _current["since"] = item.nodeid, time.monotonic()
    try:
        yield
    finally:
        _current["test"], _current["since"] = None, None
