"""Django's database sessions, read with hand-written SQL.

A session is read before every send (the socket's person is re-checked), at every socket's
handshake and for every page; the ORM's `get()` cost about 0.5 ms of CPU of it here, in the
database thread that shares the GIL with the event loop (chatsite/sql.py says why that
matters). Writing, expiring and clearing sessions stay Django's own.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.sessions.backends import db

from chatsite import sql


@functools.cache
def _live(model: Any) -> sql.Rows[Any]:
    return sql.Rows(model, ["session_key", "session_data"], "session_key = %s AND expire_date > %s")


class SessionStore(db.SessionStore):
    def _get_session_from_db(self) -> Any:
        found = _live(self.model).first([self.session_key, sql.now()])
        if found is None:
            # As Django's: a key that names no live session is dropped (a new one is made).
            self._session_key = None
        return found
