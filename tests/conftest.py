"""The shared cast (alice, bob) and the fake provider server.

The network guard is pytest-socket's (`--allow-hosts` in pyproject.toml: a test that connects
past loopback fails), the hang guard pytest-timeout's (`timeout` there: a test that runs too
long ends the run with every thread's stack)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from providers import model_sync
from tests.fakes.sse_server import SSEServer
from tools import offer

# --- people --------------------------------------------------------------------------------------


def _person(django_user_model: Any, name: str) -> Any:
    """A person as signup makes them: an account holding the signup coins."""
    from billing.services import account_open

    user = django_user_model.objects.create_user(name, password=f"{name}-password-1")
    account_open(user_id=user.pk)
    return user


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    return _person(django_user_model, "alice")


@pytest.fixture
def bob(django_user_model: Any) -> Any:
    return _person(django_user_model, "bob")


User = get_user_model()

# --- the fake provider ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sse_server() -> Iterator[SSEServer]:
    server = SSEServer().start()
    yield server
    server.stop()


def configure_provider(settings: Any, name: str, **entry: str) -> None:
    """Set one provider's settings.PROVIDERS entry (API_KEY, BASE_URL) for this test only
    (pytest-django's `settings` restores the whole setting after it)."""
    providers = copy.deepcopy(settings.PROVIDERS)
    providers[name].update(entry)
    settings.PROVIDERS = providers


@pytest.fixture
def anthropic_server(_sse_server: SSEServer, settings: Any) -> Iterator[SSEServer]:
    """The fake Anthropic API, with the site configured to use it through the real SDK."""
    _sse_server.reset()
    configure_provider(
        settings, "anthropic", API_KEY="sk-ant-test-0000000000000000", BASE_URL=_sse_server.url
    )
    yield _sse_server
    _sse_server.reset()


@pytest.fixture
def openai_server(_sse_server: SSEServer, settings: Any) -> Iterator[SSEServer]:
    """The fake OpenAI API (Chat Completions under /v1), used through the real SDK."""
    _sse_server.reset()
    configure_provider(
        settings,
        "openai",
        API_KEY="sk-proj-test-0000000000000000",
        BASE_URL=f"{_sse_server.url}/v1",
    )
    yield _sse_server
    _sse_server.reset()


@pytest.fixture
def openrouter_server(_sse_server: SSEServer, settings: Any) -> Iterator[SSEServer]:
    """The fake OpenRouter API (under /api/v1), used through the real OpenAI SDK."""
    _sse_server.reset()
    configure_provider(
        settings,
        "openrouter",
        API_KEY="sk-or-v1-test-0000000000000000",
        BASE_URL=f"{_sse_server.url}/api/v1",
    )
    settings.SITE_NAME = "Chatsite tests"
    settings.SITE_URL = "https://chat.example.test"
    yield _sse_server
    _sse_server.reset()


@pytest.fixture
def all_providers(
    anthropic_server: SSEServer, openai_server: SSEServer, openrouter_server: SSEServer
) -> SSEServer:
    """One fake server answering as every provider (each base URL points at it)."""
    return anthropic_server


@pytest.fixture
def database_trips(monkeypatch: Any) -> list[str]:
    """The names of the functions run in the database thread from now on, in order (every trip
    goes through asgiref's `SyncToAsync`, which Channels' `database_sync_to_async` extends)."""
    from asgiref.sync import SyncToAsync

    trips: list[str] = []
    thread_handler = SyncToAsync.thread_handler

    def counted_handler(self: Any, loop: Any, *args: Any, **kwargs: Any) -> Any:
        function = getattr(self.func, "func", self.func)  # a partial's function
        trips.append(str(getattr(function, "__name__", repr(function))))
        return thread_handler(self, loop, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "thread_handler", counted_handler)
    return trips


@pytest.fixture(scope="session", autouse=True)
def _adapters_loaded() -> None:
    """Every provider's adapter (and its SDK) loaded before the tests, as chatsite/asgi.py
    loads them at a worker's start: no test pays for the import in its own timing."""
    from providers import registry

    registry.load_adapters()


@pytest.fixture(autouse=True)
def _fast_delivery(settings: Any) -> None:
    settings.DEMO_TOKENS_PER_SECOND = 2000.0


@pytest.fixture(autouse=True)
def _no_titles_unless_asked(settings: Any) -> None:
    """A title call follows every first reply; tests of other things leave it out of their
    counts (tests/chat/test_titles.py turns it on)."""
    settings.AUTO_TITLES = False


@pytest.fixture(autouse=True)
def _no_rate_limits_unless_asked(settings: Any) -> None:
    """Property tests send hundreds of messages a minute as one person; the limits have their
    own tests (tests/chat/test_limits.py)."""
    settings.SENDS_PER_MINUTE = 0
    settings.SOCKETS_PER_PERSON = 10_000


@pytest.fixture(autouse=True)
def _built_in_catalogue() -> Iterator[None]:
    """Each test starts from the built-in catalogue, without another test's stored figures."""
    model_sync.forget()
    yield
    model_sync.forget()


@pytest.fixture(autouse=True)
def _tools_read_afresh() -> Iterator[None]:
    """Each test reads the admin's switches for tools and the MCP servers' lists anew (a
    process keeps them a few seconds, and another test may have switched them)."""
    offer.forget_setup()
    offer.forget_servers()
    yield
    offer.forget_setup()
    offer.forget_servers()


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Each test's event loop gets a channel layer of its own.

    A worker has one loop for its life, but the tests run each in a new one, and a layer keeps
    loop-bound state across them: the in-memory layer's queues, and channels-redis's receive
    locks and buffers (a receive cancelled when a test's loop closed can leave its channel's
    lock bound to a loop that is gone, and the next test's hub then cannot receive: "bound to
    a different event loop", retried every second). Each test gets a new instance; Redis pools
    close with their loop.
    """
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    # `set` swaps a layer in for tests (Channels' own words); a fresh one each time.
    channel_layers.set(DEFAULT_CHANNEL_LAYER, channel_layers.make_backend(DEFAULT_CHANNEL_LAYER))
    yield
    channel_layers.set(DEFAULT_CHANNEL_LAYER, channel_layers.make_backend(DEFAULT_CHANNEL_LAYER))


@pytest.fixture(scope="session", autouse=True)
def _close_connections_of_the_async_orm_thread(
    django_db_setup: Any, django_db_blocker: Any
) -> Iterator[None]:
    """The async ORM runs in asgiref's one sync thread, whose connection outlives the tests;
    close it before the test database is dropped (PostgreSQL refuses while it is open)."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    with django_db_blocker.unblock():
        # Outside any event loop, a thread-sensitive call runs in asgiref's one sync thread.
        asyncio.run(sync_to_async(connections.close_all)())
