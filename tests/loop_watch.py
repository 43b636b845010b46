"""Name the task when a test's event loop cannot shut down.

An event loop closing cancels its tasks and waits for them; a task that swallows its cancel
waits forever, and pytest's faulthandler dump then shows only the loop's `select`. This
watches every loop's close and, past LOOP_CLOSE_PATIENCE seconds, prints each pending task
with its stack, so a CI log names the culprit. It changes nothing else.
"""

from __future__ import annotations

import asyncio
import asyncio.runners
import os
import sys
import threading
import time
import traceback
from typing import Any

LOOP_CLOSE_PATIENCE = 30.0

_closing: dict[str, Any] = {"loop": None, "since": None, "out": sys.stderr}


def _report(loop: asyncio.AbstractEventLoop) -> None:
    out = _closing["out"]
    print(
        f"\nAn event loop has waited {LOOP_CLOSE_PATIENCE:g} s for its tasks to end. Pending:",
        file=out,
    )
    for task in list(asyncio.all_tasks(loop)):
        print(f"  {task!r}", file=out)
        for frame in task.get_stack(limit=25):
            traceback.print_stack(frame, limit=1, file=out)
    out.flush()


def _watch() -> None:
    while True:
        time.sleep(1.0)
        since, loop = _closing["since"], _closing["loop"]
        if since is not None and time.monotonic() - since > LOOP_CLOSE_PATIENCE:
            _closing["since"] = None
            _report(loop)


def install() -> None:
    # A copy of the terminal's stderr taken now, before pytest captures output (as pytest's own
    # faulthandler does): a hung test never reaches its report.
    _closing["out"] = os.fdopen(os.dup(sys.stderr.fileno()), "w")
    real_close = asyncio.runners.Runner.close

    def close(self: asyncio.runners.Runner) -> None:
        _closing["loop"], _closing["since"] = self._loop, time.monotonic()  # type: ignore[attr-defined]
        try:
            real_close(self)
        finally:
            _closing["since"] = None

    asyncio.runners.Runner.close = close  # type: ignore[method-assign]
    threading.Thread(target=_watch, name="loop-close-watch", daemon=True).start()
