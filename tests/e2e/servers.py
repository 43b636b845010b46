"""Real server processes (daphne, or uvicorn as the README runs it) for end-to-end tests and
benchmarks, each on its own port."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
TEST_KEY = "sk-ant-e2e-0000000000000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def site_env(*, database_url: str, provider_url: str, static_root: Path) -> dict[str, str]:
    """Production-like settings (DEBUG off) pointed at the fake provider."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        ENV_FILE="",  # a developer's .env (keys, settings) never reaches the tests
        DEBUG="false",
        HTTPS="false",  # plain http on loopback: no secure-only cookies, no redirect
        SECRET_KEY="e2e-secret-key-not-for-production-0123456789",
        BYOK_ENCRYPTION_KEYS="ZTJlLW9ubHktZmVybmV0LWtleS0wMDAwMDAwMDAwMDA=",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        ANTHROPIC_API_KEY=TEST_KEY,
        ANTHROPIC_BASE_URL=provider_url,
        DEFAULT_MODEL="claude-sonnet-5-5",
        STATIC_ROOT=str(static_root),
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        LOG_LEVEL=os.environ.get("E2E_LOG_LEVEL", "WARNING"),
        # Mail goes to the server's log: the password-reset pages are offered.
        EMAIL_URL="consolemail://",
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
    )


# Largest websocket message, as `make run` sets it (WS_MAX_MESSAGE in the Makefile).
WS_MAX_MESSAGE = "262144"


def daphne_command(port: int, app: str = "chatsite.asgi:application") -> list[str]:
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
            "--websocket-max-message-size", WS_MAX_MESSAGE, app]  # fmt: skip


def uvicorn_command(port: int, app: str = "chatsite.asgi:application") -> list[str]:
    """uvicorn as the README recommends it for production: uvloop and httptools, the sans-I/O
    websockets implementation, no permessage-deflate (twice the CPU, five times the memory per
    socket)."""
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--loop", "uvloop", "--http", "httptools",
            "--ws", "websockets-sansio", "--ws-per-message-deflate", "false",
            "--ws-max-size", WS_MAX_MESSAGE, "--lifespan", "off", "--no-access-log",
            "--log-level", "warning"]  # fmt: skip


class Server:
    """One ASGI server process (daphne on the site unless `command` says otherwise)."""

    def __init__(
        self,
        env: dict[str, str],
        name: str,
        *,
        command: Callable[[int], list[str]] = daphne_command,
        ready_path: str = "/accounts/login/",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"server-{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            command(self.port), cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready(ready_path)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def _wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log.close()


def read_reply(url: str, headers: dict[str, str], content: str) -> list[dict[str, Any]]:
    """Send `content` on a real websocket to `url` and read its frames up to the reply's end."""
    from websockets.asyncio.client import connect

    async def read() -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        async with connect(url, additional_headers=headers, open_timeout=10) as ws:
            await ws.send(json.dumps({"type": "send", "content": content}))
            while not frames or frames[-1]["type"] not in ("message_stop", "error"):
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        return frames

    return asyncio.run(read())


@contextmanager
def database(tmp: Path) -> Iterator[str]:
    """A fresh database for the servers: a throwaway PostgreSQL one in the services pass."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        yield f"sqlite:///{tmp / 'e2e.sqlite3'}"
        return
    import psycopg

    name = f"e2e_{uuid.uuid4().hex[:12]}"
    admin = base.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Person:
    """A logged-in person speaking HTTP to a server (for tests that need no browser)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def _cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name and c.value is not None)

    def get(self, path: str, base_url: str | None = None) -> str:
        with self.opener.open((base_url or self.base_url) + path, timeout=10) as response:
            return response.read().decode()

    def post(self, path: str, data: dict[str, str]) -> str:
        form = {**data, "csrfmiddlewaretoken": self._cookie("csrftoken")}
        request = urllib.request.Request(
            self.base_url + path,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Referer": self.base_url + path},
        )
        with self.opener.open(request, timeout=10) as response:
            return str(response.geturl())

    def sign_up(self, username: str) -> None:
        self.get("/accounts/signup/")
        password = "e2e-pass-phrase-42"
        self.post(
            "/accounts/signup/",
            {"username": username, "password1": password, "password2": password},
        )

    def new_conversation(self) -> int:
        url = self.post("/chat/new/", {})
        match = re.search(r"/chat/(\d+)/$", url)
        assert match, url
        return int(match.group(1))

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)
