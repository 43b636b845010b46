"""The site a benchmark measures: real ASGI server processes and one person with plenty of coins.

The embedded default is one worker on SQLite with the in-memory channel layer; `services=True`
is the scaled-out mode, PostgreSQL (a fresh database) and the Redis channel layer, with any
number of workers. Either server, daphne (the default of `make run`) or uvicorn, serves the
site (`chatsite.asgi`) or the floor (`bench.floor`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.servers import (  # noqa: E402
    Person,
    Server,
    daphne_command,
    manage,
    site_env,
    uvicorn_command,
)
from tests.fakes.otlp import Receiver  # noqa: E402

POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/7")
APPS = {"site": "chatsite.asgi:application", "floor": "bench.floor:application"}
COMMANDS = {"daphne": daphne_command, "uvicorn": uvicorn_command}


def server_command(server: str, app: str, port: int) -> list[str]:
    if server not in COMMANDS:
        raise ValueError(f"unknown server {server!r}")
    return COMMANDS[server](port, APPS[app])


class Worker(Server):
    """One server process on its own port: `server` (daphne or uvicorn) serving `app`."""

    def __init__(self, env: dict[str, str], *, server: str, app: str, name: str) -> None:
        super().__init__(
            env,
            f"bench-{name}",
            command=lambda port: server_command(server, app, port),
            ready_path="/accounts/login/" if app == "site" else "/",
        )


@dataclass
class Site:
    workers: list[Worker]
    person: Person | None  # None for the floor, which has no accounts
    description: str
    pids: list[int] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    username: str = ""

    def new_conversations(self, count: int) -> list[int]:
        """`count` conversations of the benchmark's person, made in the database: a page's New
        chat reopens the person's empty conversation rather than making another."""
        code = (
            "from chat.models import Conversation as C; "
            "from django.conf import settings as s; "
            "from django.contrib.auth import get_user_model as U; "
            f"u = U().objects.get(username={self.username!r}); "
            "made = C.objects.bulk_create("
            f"C(owner=u, model=s.DEFAULT_MODEL) for _ in range({count})); "
            "print(' '.join(str(c.pk) for c in made))"
        )
        made = subprocess.run(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
            cwd=ROOT, env=self.env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        return [int(pk) for pk in made.stdout.splitlines()[-1].split()]

    def headers(self, worker: Worker) -> dict[str, str]:
        cookie = {"Cookie": self.person.cookie_header} if self.person else {}
        return {**cookie, "Origin": worker.url}


@contextmanager
def throwaway_postgres(server_url: str = f"{POSTGRES}/postgres") -> Iterator[str]:
    """A fresh PostgreSQL database on the server `server_url` names (its URL), dropped after,
    with this process's Django connections closed first."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    base = server_url.rsplit("/", 1)[0]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        if "django" in sys.modules:
            from django.conf import settings

            if settings.configured:  # a benchmark that set Django up in its own process
                from django.db import connections

                connections.close_all()
        with psycopg.connect(server_url, autocommit=True) as conn:
            # WITH (FORCE): the pool's idle connections (psycopg_pool) end with it.
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def add_database_url(parser: argparse.ArgumentParser) -> None:
    """`--database-url`: the PostgreSQL server a benchmark makes its throwaway database on."""
    parser.add_argument(
        "--database-url", default=f"{POSTGRES}/postgres",
        help="a PostgreSQL server to make the throwaway database on",
    )  # fmt: skip


@contextmanager
def django_on_throwaway_postgres(server_url: str) -> Iterator[None]:
    """Django set up in this process on a fresh, migrated PostgreSQL database (dropped after),
    for the benchmarks that time queries in process."""
    with throwaway_postgres(server_url) as database_url:
        os.environ["DATABASE_URL"] = database_url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings_test")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        yield


@contextmanager
def _database(services: bool, tmp: Path) -> Iterator[str]:
    if not services:
        yield f"sqlite:///{tmp / 'bench.sqlite3'}"
        return
    with throwaway_postgres() as url:
        yield url


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS).flushdb()


@contextmanager
def bench_site(
    name: str,
    *,
    provider_url: str,
    server: str = "daphne",
    app: str = "site",
    services: bool = False,
    workers: int = 1,
    pages: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Site]:
    """`pages`: the site's static files collected first, for a benchmark in a browser;
    `extra_env`: more of the site's environment (traces' destination, say)."""
    tmp = Path(tempfile.mkdtemp())
    with _database(services, tmp) as database_url:
        env = site_env(database_url=database_url, provider_url=provider_url, static_root=tmp)
        env.pop("REDIS_URL", None)
        if services:
            _flush_redis()
            env["REDIS_URL"] = REDIS
        # One person drives everything here: the per-person limits would refuse that, and the
        # title call after each first reply is not what a benchmark measures.
        env.update(SENDS_PER_MINUTE="0", SOCKETS_PER_PERSON="1000000", AUTO_TITLES="false")
        env.update(extra_env or {})
        if app == "site":
            manage(env, "migrate", "--noinput")
        if pages:
            # Before the workers start: WhiteNoise lists the files once, at start.
            manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        running: list[Worker] = []
        try:
            for n in range(workers):
                running.append(Worker(env, server=server, app=app, name=f"{name}-{n}"))
            person = None
            if app == "site":
                person = Person(running[0].url)
                person.sign_up(name)
                for _ in range(5):
                    manage(env, "grant_coins", name, "1000000", "--reason", "benchmark")
            layer = "PostgreSQL + Redis" if services else "SQLite, in-memory layer"
            what = "the floor (no Django)" if app == "floor" else layer
            yield Site(
                workers=running,
                person=person,
                description=f"{server}, {what}, {workers} worker(s)",
                pids=[w.process.pid for w in running],
                env=env,
                username=name,
            )
        finally:
            for worker in running:
                with contextlib.suppress(Exception):
                    worker.stop()


TRACES = ("off", "on", "text", "sdk")


def add_traces_option(parser: argparse.ArgumentParser) -> None:
    """`--traces`: what `collector` sets the site up to export."""
    parser.add_argument(
        "--traces",
        choices=TRACES,
        default="off",
        help="the site exports traces to a local OTLP/HTTP collector (text: with the text; "
        "sdk: with the Anthropic SDK's own spans)",
    )


class Collector:
    """A local OTLP/HTTP collector that takes every export (and counts it)."""

    def __init__(self, traces: str) -> None:
        self.env: dict[str, str] = {}
        self.receiver: Receiver | None = None
        if traces == "off":
            return
        self.receiver = Receiver(keep=False)
        self.env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.receiver.url,
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": str(traces == "text").lower(),
            "TRACES_SDK_SPANS": str(traces == "sdk").lower(),
        }

    @property
    def posts(self) -> int:
        return self.receiver.posts if self.receiver else 0

    @property
    def size(self) -> int:
        return self.receiver.size if self.receiver else 0


@contextmanager
def collector(traces: str) -> Iterator[Collector]:
    found = Collector(traces)
    try:
        yield found
    finally:
        if found.receiver is not None:
            found.receiver.close()
