"""chatsite/sessions.py: database sessions read in hand-written SQL load as Django's own do."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from chatsite.sessions import SessionStore

pytestmark = pytest.mark.django_db


def _saved(**data: Any) -> str:
    session = SessionStore()
    session.update(data)
    session.save()
    assert session.session_key is not None
    return session.session_key


def test_a_live_session_loads_what_was_saved_as_djangos_store_does() -> None:
    key = _saved(_auth_user_id="7", note="ünïcode")

    loaded = SessionStore(key)

    assert loaded.load() == {"_auth_user_id": "7", "note": "ünïcode"}
    assert loaded.load() == DjangoStore(key).load()
    assert loaded.session_key == key


def test_an_expired_session_loads_nothing_and_drops_its_key() -> None:
    key = _saved(_auth_user_id="7")
    Session.objects.filter(pk=key).update(expire_date=timezone.now() - dt.timedelta(seconds=1))

    loaded = SessionStore(key)

    assert loaded.load() == {}
    assert loaded.session_key is None


def test_a_made_up_key_loads_nothing() -> None:
    loaded = SessionStore("x" * 32)
    assert loaded.load() == {}
    assert loaded.session_key is None
