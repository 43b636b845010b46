"""Production settings pass Django's deployment checks; every page carries a strict CSP."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from chat.models import Conversation

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "HTTPS": "true",
    "ALLOWED_HOSTS": "chat.example.com",
    "SECRET_KEY": "k" * 10 + "production-like-secret-key-with-enough-entropy-7f3a9c1e",
    "BYOK_ENCRYPTION_KEYS": "ZTJlLW9ubHktZmVybmV0LWtleS0wMDAwMDAwMDAwMDA=",
    "DJANGO_SETTINGS_MODULE": "chatsite.settings",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "HTTPS"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **PRODUCTION, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wildcard_host_is_refused() -> None:
    result = _manage("check", ALLOWED_HOSTS="*")
    assert result.returncode != 0 and "'*' is refused" in result.stderr


@pytest.mark.parametrize(
    ("log_level", "sdk_level"), [("DEBUG", "INFO"), ("info", "INFO"), ("WARNING", "WARNING")]
)
def test_the_sdk_loggers_follow_log_level_but_never_below_info(
    log_level: str, sdk_level: str
) -> None:
    """At DEBUG the SDKs log whole prompts; at WARNING their line per request is not wanted."""
    code = (
        "import logging, django; django.setup(); "
        "print(logging.getLogger('httpx2').level, logging.getLogger('anthropic').level)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "HTTPS"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **PRODUCTION, "LOG_LEVEL": log_level},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    level = logging.getLevelNamesMapping()[sdk_level]
    assert result.stdout.split() == [str(level), str(level)]


def test_an_unknown_log_level_is_refused() -> None:
    result = _manage("check", LOG_LEVEL="LOUD")
    assert result.returncode != 0 and "LOG_LEVEL 'LOUD' is not a logging level" in result.stderr


CSP_PAGES = ["/accounts/login/", "/accounts/signup/", "/chat/", "/settings/keys/", "/admin/login/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", [*CSP_PAGES, "conversation"])
def test_every_page_has_a_csp_without_inline_script_and_no_inline_script(
    client: Client, alice: Any, url: str
) -> None:
    client.force_login(alice)
    if url == "conversation":
        url = f"/chat/{Conversation.objects.create(owner=alice, model='demo').pk}/"
    response = client.get(url, follow=True)
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["img-src"] == "'self'"  # no image from another host is ever loaded
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    html = response.content.decode()
    # Every script is a file; no event-handler attributes.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert not re.search(r"\son[a-z]+=", html)
