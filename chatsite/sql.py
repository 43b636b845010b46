"""Hand-written SQL for the statements every reply runs before its provider call.

Django's ORM spends about 0.4-0.6 ms of CPU building, compiling and loading one query on the
machine this project is measured on; the statement itself takes under 0.1 ms. A send ran 15
of them before the provider was called, in the database thread that shares the GIL with the
event loop relaying every stream (docs/benchmarks.md, "Where a reply's CPU goes";
`python -m bench.db_writes --show` lists a reply's statements). Those few statements are
written out here; everything else stays in the ORM. The SQL runs unchanged on SQLite and
PostgreSQL (the cursors take `%s` placeholders on both).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.utils import timezone

M = TypeVar("M", bound=models.Model)

# Fields whose values both databases return as Python wants them (no converter in the ORM).
_PLAIN = (
    models.IntegerField,
    models.AutoField,
    models.CharField,
    models.TextField,
    models.ForeignKey,
)


_made = threading.local()


def cursor() -> Any:
    """Django's cursor on this thread's connection, made once per connection and reused by every
    statement here: making one cost about 30 µs of CPU on PostgreSQL (12 on SQLite), as much as
    a short statement's own work through Django and psycopg (docs/benchmarks.md, ninth
    measurement). It is wrapped as `connection.cursor()` wraps its cursors (a debug cursor while
    queries are logged), with Django's error wrapping and execute wrappers; a new connection
    (after a trip to the database thread handed the last one back to the pool) gets a new one.

    On PostgreSQL it binds parameters on the server, unlike the ORM's cursors: psycopg sends the
    statement and its values apart instead of quoting each value into the text, and a statement
    run often on a connection is prepared there once (settings.py: with the site's own pool),
    so PostgreSQL neither parses nor plans it again. That took a tenth off a reply's
    statements' CPU in this process and two fifths off PostgreSQL's own (`bench.reply_db`,
    docs/benchmarks.md, twelfth measurement). The statements here are plain SELECT, INSERT,
    UPDATE and DELETE with values only where a column's type tells PostgreSQL theirs, which
    server binding needs."""
    db = connections[DEFAULT_DB_ALIAS]
    db.close_if_health_check_failed()
    # Connects if needed; like `cursor()`, refuses to run in an event loop's thread.
    db.ensure_connection()
    key = (db, db.connection, db.queries_logged)
    made = getattr(_made, "cursor", None)
    if made is None or _made.key != key:
        made = _made.cursor = _new_cursor(db)
        _made.key = key
    return made


class _Logged(CursorDebugWrapper):
    """A debug cursor (queries are being logged) binding on the server: logs each statement with
    its values in it, as for the ORM's cursors (Django would log its `$1` placeholders)."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(sql if params is None else self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)


def _new_cursor(db: Any) -> Any:
    if db.vendor != "postgresql":
        return db.cursor()
    from django.db.backends.postgresql import base as postgresql

    # Names defined only under psycopg 3, which the stubs do not know.
    base: Any = postgresql
    db.validate_thread_sharing()
    made = base.ServerBindingCursor(db.connection)
    # As Django's `create_cursor` does: times read in the connection's time zone.
    loader = db.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, base.Format.TEXT)
    if db.timezone != loader.timezone:
        base.register_tzloader(db.timezone, made)
    return _Logged(made, db) if db.queries_logged else db.make_cursor(made)


def one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The first row of `sql`, or None."""
    reused = cursor()
    reused.execute(sql, params)
    return reused.fetchone()


def every(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    reused = cursor()
    reused.execute(sql, params)
    return reused.fetchall()


def run(sql: str, params: Sequence[Any]) -> int:
    """Execute a write; the number of rows it changed."""
    reused = cursor()
    reused.execute(sql, params)
    return reused.rowcount


def now() -> Any:
    """The current time as the database takes it in a parameter (what `auto_now` would write)."""
    return moment(timezone.now())


def moment(value: dt.datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def for_update() -> str:
    """ " FOR UPDATE" where the database locks rows (SQLite locks the whole database instead:
    its transactions here begin IMMEDIATE)."""
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


def for_share() -> str:
    """ " FOR SHARE" on PostgreSQL: the row cannot be locked for update until the transaction
    ends, but others may share it (SQLite's IMMEDIATE transactions exclude each other)."""
    return " FOR SHARE" if connection.vendor == "postgresql" else ""


class Rows(Generic[M]):
    """Instances of `model` with only some fields loaded, like `.only(...)`, from one
    hand-written WHERE clause (and any ORDER BY and LIMIT after it). Reading a field that was
    not loaded fetches it, as Django does for deferred fields. Only fields whose values both
    databases return as they are (numbers, text, keys) can be loaded: the ORM converts the
    others (dates, booleans and decimals on SQLite, JSON) and raw SQL does not."""

    def __init__(self, model: type[M], attnames: Sequence[str], where: str) -> None:
        wanted = set(attnames)
        fields = [f for f in model._meta.concrete_fields if f.attname in wanted]
        missing = wanted - {f.attname for f in fields}
        if missing:
            raise ValueError(f"{model.__name__} has no fields {sorted(missing)}")
        converted = [f.attname for f in fields if not isinstance(f, _PLAIN)]
        if converted:
            raise ValueError(f"load {converted} through the ORM (their values need converting)")
        self.model = model
        # from_db takes the values in the model's own field order.
        self.attnames = [f.attname for f in fields]
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        table = connection.ops.quote_name(model._meta.db_table)
        self.sql = f"SELECT {columns} FROM {table} WHERE {where}"

    def first(self, params: Sequence[Any], *, lock: bool = False) -> M | None:
        """The first matching row (the WHERE clause should select at most one), locked until
        the transaction ends if `lock`."""
        row = one(self.sql + (for_update() if lock else ""), params)
        if row is None:
            return None
        return self.model.from_db(connection.alias, self.attnames, row)


# Fields whose preparation `Insert` shortens (`_kind`), for values of one Python type each.
_TEXT, _INTEGER, _BOOLEAN, _KEY = "text", "integer", "boolean", "key"


def _kind(field: Any) -> str | None:
    """Which shortcut `Insert` may take with `field`'s values: only for Django's own field
    classes (a subclass may prepare its values otherwise)."""
    kind = type(field)
    if kind in (models.CharField, models.TextField):
        return _TEXT  # any str is returned as it is (`to_python`), on every database
    if kind in _INTEGERS:
        return _INTEGER  # int(value), then the database's own adapting (PostgreSQL's types)
    if kind is models.BooleanField:
        return _BOOLEAN
    if kind is models.ForeignKey and type(field.target_field) in _AUTOMATIC_KEYS:
        return _KEY  # int(value), then the database's check of an automatic key
    return None


_INTEGERS = (
    models.IntegerField,
    models.BigIntegerField,
    models.SmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
    models.PositiveSmallIntegerField,
)
_AUTOMATIC_KEYS = (models.AutoField, models.BigAutoField, models.SmallAutoField)


class Insert(Generic[M]):
    """New rows of `model` written as `objects.create(**values)` writes them, from SQL built
    once: every field not given takes its default, `auto_now` and `auto_now_add` fields the
    current time, and each value is prepared by its field for the database. Values are given
    by attribute name (`conversation_id`, not `conversation`). Not sent: the model's `save()`
    and its signals, so only for models with neither (tests pin which)."""

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        self._stamped = {
            f.attname
            for f in self.fields
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
        }
        self._settable = {f.attname for f in self.fields} - self._stamped
        self._fixed: dict[str, Any] = {}
        self._kinds = [(f, _kind(f)) for f in self.fields]
        table = connection.ops.quote_name(model._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(f.column) for f in self.fields)
        places = ", ".join(["%s"] * len(self.fields))
        pk = connection.ops.quote_name(model._meta.pk.column)
        self._into, self._row = f"INSERT INTO {table} ({columns}) VALUES", f"({places})"
        self.sql = f"{self._into} {self._row} RETURNING {pk}"
        # PostgreSQL and SQLite (>= 3.35) both take an ON CONFLICT clause without a target.
        self._if_new = f"{self._into} {self._row} ON CONFLICT DO NOTHING RETURNING {pk}"

    def row(self, **values: Any) -> int:
        """Write one row; its primary key."""
        written = one(self.sql, self._params(values, timezone.now()))
        assert written is not None
        return int(written[0])

    def row_if_new(self, **values: Any) -> int | None:
        """Write one row unless a unique constraint already has one like it (then nothing is
        written, and no error either: None); its primary key."""
        written = one(self._if_new, self._params(values, timezone.now()))
        return None if written is None else int(written[0])

    def rows(self, *many: dict[str, Any]) -> None:
        """Write several rows in one statement, in the order given."""
        if not many:
            return
        now = timezone.now()
        params = [param for values in many for param in self._params(values, now)]
        run(f"{self._into} {', '.join([self._row] * len(many))}", params)

    def _params(self, values: dict[str, Any], now: Any) -> list[Any]:
        if not self._settable.issuperset(values):
            wrong = sorted(set(values) - self._settable)
            raise TypeError(f"{self.model.__name__} has no fields to set called {wrong}")
        ops = connection.ops
        stamps: dict[type, Any] = {}  # the time, prepared once per kind of field
        params = []
        for field, kind in self._kinds:
            name = field.attname
            if name in values:
                value = values[name]
                # What `field.get_db_prep_save(value)` returns, without its steps where they
                # leave the value as it is (they took a third of an insert's CPU): text, whole
                # numbers, booleans and keys of the fields Django ships, None in any of them.
                if kind is None:
                    params.append(field.get_db_prep_save(value, connection))
                elif value is None:
                    params.append(None)
                elif kind is _TEXT and isinstance(value, str):
                    params.append(value)
                elif kind is _INTEGER and type(value) is int:
                    params.append(ops.adapt_integerfield_value(value, field.get_internal_type()))
                elif kind is _BOOLEAN and type(value) is bool:
                    params.append(value)
                elif kind is _KEY and type(value) is int:
                    params.append(ops.validate_autopk_value(value))
                else:
                    params.append(field.get_db_prep_save(value, connection))
            elif name in self._stamped:
                if type(field) not in stamps:
                    stamps[type(field)] = field.get_db_prep_save(now, connection)
                params.append(stamps[type(field)])
            elif field.has_default() and callable(field.default):  # made anew each time
                params.append(field.get_db_prep_save(field.get_default(), connection))
            else:  # the same every time (none given: "" or None): prepared once
                if name not in self._fixed:
                    self._fixed[name] = field.get_db_prep_save(field.get_default(), connection)
                params.append(self._fixed[name])
        return params

    def create(self, **values: Any) -> M:
        """Write one row; an instance with its key and the given fields loaded (the others
        are fetched on first use, as for `.only()`)."""
        return self._instance(values, self.row(**values))

    def create_if_new(self, **values: Any) -> M | None:
        """`create`, unless a unique constraint already has a row like it (`row_if_new`)."""
        pk = self.row_if_new(**values)
        return None if pk is None else self._instance(values, pk)

    def _instance(self, values: dict[str, Any], pk: int) -> M:
        loaded = {**values, self.model._meta.pk.attname: pk}
        names = [f.attname for f in self.model._meta.concrete_fields if f.attname in loaded]
        # from_db takes the values in the model's own field order.
        return self.model.from_db(connection.alias, names, [loaded[n] for n in names])
