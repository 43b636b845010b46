"""A reply's database work, in this process: every trip a reply makes to the database thread, one
reply after another, with no server, network or provider around it.

`bench.reply_cost` measures a whole reply, where this work is about half of the CPU and the rest
(the server, the SDK, the websocket) moves its total by more than a change here does from run to
run. This runs the same functions the server runs, in the same order, each trip closing the
connection as `database_sync_to_async` does (back to the pool on PostgreSQL), and prints the
CPU of each trip per reply. On PostgreSQL it also prints the CPU PostgreSQL's own processes
spent per reply: the database shares the machine's cores with the server and its clients.

    python -m bench.reply_db [--replies 500] [--services]

`--services` runs on PostgreSQL (a fresh database), as a scaled-out site does; the default is
the embedded SQLite.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.site import _database  # noqa: E402
from tests.e2e.servers import manage, site_env  # noqa: E402

WARM_UP = 30
HUB = "hub.bench-reply-db!0"
UNUSED = "http://127.0.0.1:9"  # no provider is called
TRIPS = ("admission", "send", "settle", "close")


def database_cpu_seconds() -> float:
    """CPU seconds of every PostgreSQL process on this machine (its backends, and the rest)."""
    from bench.relay import cpu_seconds

    total = 0.0
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(proc.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # a process that ended meanwhile
    return total


def measure(replies: int) -> tuple[dict[str, float], float | None]:
    """CPU milliseconds per reply of each trip (run inside a process with the site's settings),
    and on PostgreSQL its own processes' CPU milliseconds per reply (None on SQLite)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import close_old_connections, connection

    from billing import services as billing
    from chat import consumers, limits, services
    from chat import replies as starting
    from chat.frames import SendFrame
    from chat.models import Conversation
    from chatsite.ws_auth import session_store
    from providers.events import Usage
    from tests.chat.helpers import signed_in_session

    person = get_user_model().objects.create_user("reply-db", password=uuid.uuid4().hex)
    billing.account_open(user_id=person.pk)
    billing.coins_adjust(
        user_id=person.pk, amount=10**9, reason="benchmark", reference="bench", created_by_id=None
    )
    session_key = signed_in_session(person).session_key
    conversations = [
        Conversation.objects.create(owner=person, model="claude-sonnet-5-5").pk
        for _ in range(WARM_UP + replies)
    ]
    spent = dict.fromkeys(TRIPS, 0.0)

    def trip(name: str, work: Callable[..., Any], **kwargs: Any) -> Any:
        started = time.process_time()
        close_old_connections()
        try:
            return work(**kwargs)
        finally:
            close_old_connections()
            spent[name] += time.process_time() - started

    def reply(conversation_id: int) -> None:
        # The socket's session and person, its row and its catch-up (the latest exchange).
        opening = trip(
            "admission", consumers._open, session=session_store(session_key),
            conversation_id=conversation_id, hub=HUB, sweep=True,
        )  # fmt: skip
        assert opening.user_id == person.pk and opening.socket_id is not None
        socket_id = opening.socket_id
        frame = SendFrame(content="Say hello", client_id=uuid.uuid4().hex, max_tokens=1024)
        resolved, start, _ = trip(
            "send", starting._begin, user_id=person.pk, session_key=session_key,
            conversation_id=conversation_id, frame=frame, hub=HUB,
        )  # fmt: skip
        attempt = services.Attempt(
            owner_id=person.pk, conversation_id=conversation_id, message_id=start.assistant.pk,
            model=resolved.model, byok=False, hold=start.hold, reference=start.reference,
            attempt=1, usage=Usage(input_tokens=20, output_tokens=40), usage_estimated=False,
            time_to_first_token_ms=5, duration_ms=800,
        )  # fmt: skip
        content = "Hello! " * 20
        trip(
            "settle", services.reply_save_and_settle, text=(start.assistant.pk, content, ""),
            attempt=attempt, status="complete", content=content, thinking="",
        )  # fmt: skip
        trip("close", limits.socket_close, socket_id=socket_id)

    for conversation_id in conversations[:WARM_UP]:
        reply(conversation_id)
    for name in spent:
        spent[name] = 0.0
    postgres = connection.vendor == "postgresql"
    database_before = database_cpu_seconds() if postgres else 0.0
    for conversation_id in conversations[WARM_UP:]:
        reply(conversation_id)
    database = (database_cpu_seconds() - database_before) / replies * 1000 if postgres else None
    return {name: seconds / replies * 1000 for name, seconds in spent.items()}, database


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replies", type=int, default=500)
    parser.add_argument("--services", action="store_true", help="PostgreSQL")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # the child process, with the site's settings in its environment
        per_trip, database = measure(args.replies)
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in per_trip.items())
        where = "PostgreSQL" if os.environ["DATABASE_URL"].startswith("postgres") else "SQLite"
        print(
            f"{where}: a reply's database trips, ms of CPU per reply ({args.replies} replies): "
            f"{parts}; in all {sum(per_trip.values()):.2f}"
            + ("" if database is None else f"; PostgreSQL's own processes {database:.2f}")
        )
        return
    tmp = Path(tempfile.mkdtemp())
    with _database(args.services, tmp) as database_url:
        env = site_env(database_url=database_url, provider_url=UNUSED, static_root=tmp)
        # One person sends every reply: the per-person limits would refuse that (the rate
        # window's one statement is then not counted, as in the other benchmarks).
        env.update(SENDS_PER_MINUTE="0", SOCKETS_PER_PERSON="1000000")
        manage(env, "migrate", "--noinput")
        command = [sys.executable, "-m", "bench.reply_db", "--measure"]
        subprocess.run([*command, "--replies", str(args.replies)], cwd=ROOT, env=env, check=True)


if __name__ == "__main__":
    main()
