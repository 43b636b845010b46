"""Fixtures for end-to-end tests: real daphne processes, the fake provider, real Chromium."""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.servers import Server, database, manage, site_env, uvicorn_command
from tests.fakes.models_list import anthropic_models
from tests.fakes.sse_server import SSEServer

CHROMIUM = "/usr/bin/chromium"
# What the fake Models API says when the e2e site runs `sync_models`.
DEPRECATED, RETIRES = "claude-sonnet-4-5-20250929", "2027-02-01"


def _missing(what: str, reason: str, required_by: str) -> None:
    """Skip with a visible reason, or fail where the run says the thing must be there (CI)."""
    if os.environ.get(required_by):
        pytest.fail(f"{what} is required here ({required_by} is set) but {reason}")
    pytest.skip(f"{what}: {reason}")


@pytest.fixture(scope="session")
def e2e_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with database(tmp_path_factory.mktemp("e2e-db")) as url:
        yield url


@pytest.fixture(scope="session")
def e2e_env(
    e2e_database: str, _sse_server: SSEServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    static_root = tmp_path_factory.mktemp("static")
    env = site_env(database_url=e2e_database, provider_url=_sse_server.url, static_root=static_root)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    # The site learns model lifecycles from the provider's Models API, as in production.
    _sse_server.reset()
    _sse_server.enqueue(
        anthropic_models(
            {"id": "claude-sonnet-5-5", "max_input_tokens": 1_000_000, "max_tokens": 128_000},
            {"id": DEPRECATED, "lifecycle": "deprecated", "retires_at": f"{RETIRES}T00:00:00Z"},
        )
    )
    manage(env, "sync_models")
    _sse_server.reset()
    return env


@pytest.fixture
def provider(_sse_server: SSEServer) -> Iterator[SSEServer]:
    """The fake Anthropic API the servers talk to, emptied for each test."""
    _sse_server.reset()
    yield _sse_server
    _sse_server.reset()


@pytest.fixture(scope="session")
def live_server_url(e2e_env: dict[str, str]) -> Iterator[str]:
    server = Server(e2e_env, "browser")
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def uvicorn_server_url(e2e_env: dict[str, str]) -> Iterator[str]:
    """The same site under uvicorn, run as the README recommends for production."""
    server = Server(e2e_env, "uvicorn", command=uvicorn_command)
    yield server.url
    server.stop()


@pytest.fixture(params=["daphne", "uvicorn"])
def server_url(request: pytest.FixtureRequest) -> str:
    """Each ASGI server the site supports: daphne (`make run`) and uvicorn (production)."""
    fixture = "live_server_url" if request.param == "daphne" else "uvicorn_server_url"
    return str(request.getfixturevalue(fixture))


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, and pytest-asyncio cannot run async tests of other modules under it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _missing(
            "Chromium", f"{CHROMIUM} is not installed (apt-get install chromium)", "REQUIRE_BROWSER"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        yield launched
        launched.close()


@pytest.fixture
def services_env(e2e_env: dict[str, str]) -> dict[str, str]:
    """The servers' settings when PostgreSQL and Redis are configured (the services pass)."""
    if not e2e_env["DATABASE_URL"].startswith("postgres") or not os.environ.get("REDIS_URL"):
        _missing(
            "PostgreSQL + Redis",
            "DATABASE_URL/REDIS_URL do not name them; this runs in `make test-services`",
            "REQUIRE_SERVICES",
        )
    return e2e_env


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(
    browser: Any, live_server_url: str, request: pytest.FixtureRequest, screenshots: Path
) -> Iterator[Any]:
    """A signed-up person on a new conversation; fails the test on any page error.

    Playwright's `wait_for_function` evaluates strings, which the site's CSP forbids, so these
    tests bypass the CSP; the sanitizers alone must hold here. The page under its real CSP is
    tested in `test_the_page_works_under_its_content_security_policy`.
    """
    context = browser.new_context(base_url=live_server_url, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_up_and_open_a_chat(page, "person")
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        # What the person saw when it failed, kept with the other screenshots.
        page.screenshot(path=str(screenshots / f"FAILED-{request.node.name}.png"), full_page=True)
        print("page errors:", errors)
    context.close()
    assert errors == []


_people = itertools.count()


def sign_up_and_open_a_chat(page: Any, prefix: str) -> None:
    page.goto("/accounts/signup/")
    page.fill("#id_username", f"{prefix}{next(_people)}_{int(time.time())}")
    page.fill("#id_password1", "browser-pass-phrase-7")
    page.fill("#id_password2", "browser-pass-phrase-7")
    page.click("button[type=submit]")
    page.click("#new-chat")
    wait_ready(page)


def wait_ready(page: Any) -> None:
    """The page's script has run (a person pressing Enter earlier only gets a new line)."""
    page.wait_for_selector("#conversation[data-ready]")
