"""The site a benchmark measures: one real daphne worker (embedded default) and the local fake
provider, with one signed-up person holding plenty of coins."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.servers import Person, Server, manage, site_env  # noqa: E402
from tests.fakes.sse_server import SSEServer  # noqa: E402


@contextmanager
def bench_site(name: str) -> Iterator[tuple[Server, Person, SSEServer]]:
    provider = SSEServer().start()
    tmp = Path(tempfile.mkdtemp())
    env = site_env(
        database_url=f"sqlite:///{tmp / 'bench.sqlite3'}",
        provider_url=provider.url,
        static_root=tmp,
    )
    env.pop("REDIS_URL", None)
    # One person drives everything here: the per-person limits would refuse that, and the
    # title call after each first reply is not what a benchmark measures.
    env.update(SENDS_PER_MINUTE="0", SOCKETS_PER_PERSON="1000000", AUTO_TITLES="false")
    manage(env, "migrate", "--noinput")
    server = Server(env, f"bench-{name}")
    try:
        person = Person(server.url)
        person.sign_up(name)
        manage(env, "grant_coins", name, "1000000", "--reason", "benchmark")
        yield server, person, provider
    finally:
        server.stop()
        provider.stop()
