"""Database writes per reply, for 20, 200 and 2,000-token replies of equal duration.

In one process: the consumer (through the channels test communicator), the runner, the real
Anthropic SDK and the local fake provider, on a throwaway SQLite database. Every INSERT, UPDATE
and DELETE any thread sends is counted. Checkpoints are timed (about once a second), never per
token, so the count must not grow with the token count. All statements of a reply, reads and
transaction control included, from the socket's handshake to its close, are counted beside:
each costs CPU on the worker, so they are most of a reply's fixed cost (bench/relay.py).

    python -m bench.db_writes [--seconds 4] [--show]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def _count_statements() -> tuple[list[str], list[str]]:
    """(writes by table, every statement) sent by any thread from now on."""
    from django.db.backends import utils

    log: list[str] = []
    every: list[str] = []

    def table(sql: str) -> str:
        words = sql.split()
        name = words[1] if words[0].upper() == "UPDATE" else words[2]
        return f"{words[0].upper()} {name.strip(chr(34))}"

    real_execute, real_executemany = utils.CursorWrapper.execute, utils.CursorWrapper.executemany

    def execute(self: Any, sql: str, params: Any = None) -> Any:
        every.append(sql)
        if _WRITE.match(sql):
            log.append(table(sql))
        return real_execute(self, sql, params)

    def executemany(self: Any, sql: str, param_list: Any) -> Any:
        every.append(sql)
        if _WRITE.match(sql):
            log.append(table(sql))
        return real_executemany(self, sql, param_list)

    utils.CursorWrapper.execute = execute  # type: ignore[method-assign,assignment]
    utils.CursorWrapper.executemany = executemany  # type: ignore[method-assign,assignment]
    return log, every


async def _one(
    user: Any, server: Any, logs: tuple[list[str], list[str]], tokens: int, seconds: float
) -> Any:
    from channels.db import database_sync_to_async

    from chat import runner
    from chat.models import Conversation
    from tests.chat.helpers import connect, send, signed_in_session, until_end
    from tests.fakes.anthropic import paced

    server.enqueue(paced(tokens, duration=seconds))
    conversation = await Conversation.objects.acreate(owner=user, model="claude-sonnet-5-5")
    # The session a browser would bring (signing in is not part of a reply).
    session = await database_sync_to_async(signed_in_session)(user)
    log, every = logs
    log.clear()
    every.clear()
    tab = await connect(user, conversation, session)
    started = time.monotonic()
    await send(tab, type="send", content="count my writes", client_id=uuid.uuid4().hex)
    end = (await until_end(tab, timeout=seconds + 30))[-1]
    await runner.wait_for_replies()
    elapsed = time.monotonic() - started
    await tab.disconnect()
    assert end["type"] == "message_stop", end
    statements = list(every)
    return len(log), statements, elapsed, sorted({f"{w} x{log.count(w)}" for w in log})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument(
        "--show", action="store_true", help="list the statements of the 20-token reply, in order"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'writes.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "chatsite.settings_test"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from billing import services as billing
    from tests.fakes.sse_server import SSEServer

    call_command("migrate", verbosity=0)
    server = SSEServer().start()
    settings.PROVIDERS["anthropic"].update(API_KEY="sk-ant-bench-0000", BASE_URL=server.url)
    settings.AUTO_TITLES = False
    user = get_user_model().objects.create(username="writes")
    billing.coins_adjust(
        user_id=user.pk, amount=1_000_000, reason="bench", reference="bench", created_by_id=None
    )
    logs = _count_statements()
    print(f"replies of {args.seconds:g} s; checkpoint every {settings.REPLY_CHECKPOINT_INTERVAL} s")
    print(f"{'tokens':>7} {'seconds':>8} {'writes':>7} {'all':>5}  tables written")
    try:
        for tokens in (20, 200, 2000):
            writes, every, elapsed, tables = asyncio.run(
                _one(user, server, logs, tokens, args.seconds)
            )
            print(f"{tokens:>7} {elapsed:>8.2f} {writes:>7} {len(every):>5}  {', '.join(tables)}")
            if args.show and tokens == 20:
                for number, sql in enumerate(every, 1):
                    print(f"    {number:>3}. {' '.join(sql.split())[:160]}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
