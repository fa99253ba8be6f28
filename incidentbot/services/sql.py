"""Dialect helpers: the same upsert on SQLite and PostgreSQL, and the bulk insert ingest needs."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, CursorResult, Result, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

__all__ = [
    "driver_params",
    "insert_for",
    "insert_new",
    "insert_counted",
    "sql_time",
    "least_greatest",
    "rowcount",
]


def insert_for(session: Session, table):
    """An INSERT that knows ``on_conflict_do_nothing``/``do_update`` for this session's dialect."""
    name = session.get_bind().dialect.name
    return (sqlite.insert if name == "sqlite" else postgresql.insert)(table)


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched. ``Session.execute`` returns a CursorResult for those
    statements, but is declared to return the generic Result, which has no rowcount."""
    assert isinstance(result, CursorResult), type(result)
    return result.rowcount


def _driver_cursor(conn: Connection) -> Any:
    """A cursor of the driver's own connection (sqlite3 or psycopg), for its executemany."""
    driver = conn.connection.driver_connection
    if driver is None:  # only an invalidated pool entry has none
        raise RuntimeError("the database connection was invalidated")
    return driver.cursor()


def least_greatest(dialect: str) -> tuple[str, str]:
    """The SQL names of the two-argument minimum and maximum (SQLite's scalar min/max)."""
    return ("min", "max") if dialect == "sqlite" else ("least", "greatest")


def insert_new(
    session: Session,
    table,
    rows: Sequence[dict],
    *,
    key: str,
    returning: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> list[tuple]:
    """Insert the rows whose ``key`` (a unique column) is not stored yet; return ``returning``
    columns of the rows this call inserted (by default the key). Exact under concurrent writers.
    ``columns`` names the keys of the row dicts to store (by default all of them).

    SQLite: writers are serialised (BEGIN IMMEDIATE), so a look-up of existing keys followed by a
    plain executemany is exact and fast. PostgreSQL: psycopg's pipelined ``executemany`` with
    ``ON CONFLICT DO NOTHING RETURNING`` (SQLAlchemy's multi-VALUES form spends most of its time
    in psycopg's query parser at this size).
    """
    if not rows:
        return []
    returning = list(returning or [key])
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        col = table.c[key]
        keys = [r[key] for r in rows]
        existing: set = set()
        for i in range(0, len(keys), 900):
            existing.update(conn.execute(select(col).where(col.in_(keys[i : i + 900]))).scalars())
        fresh = [r for r in rows if r[key] not in existing]
        if fresh:
            # The driver's executemany with the columns' own bind processors: SQLAlchemy's
            # per-row parameter machinery costs more than SQLite's insert at this size.
            cols = list(columns or fresh[0])
            sql = (
                f"INSERT INTO {_q(table.name)} ({', '.join(map(_q, cols))}) VALUES ({', '.join('?' * len(cols))}) "
                f"ON CONFLICT ({_q(key)}) DO NOTHING"
            )
            cur = _driver_cursor(conn)
            try:
                cur.executemany(sql, _sqlite_params(table, cols, fresh, conn.dialect))
            finally:
                cur.close()
        return [tuple(r[c] for c in returning) for r in fresh]
    # Imported on this path only: a SQLite deployment never loads the PostgreSQL driver (libpq).
    from psycopg.types.json import Json

    cols = list(columns or rows[0])
    json_cols = {c.name for c in table.columns if isinstance(c.type, JSON)}
    sql = (
        f"INSERT INTO {_q(table.name)} ({', '.join(map(_q, cols))}) VALUES ({', '.join(f'%({c})s' for c in cols)}) "
        f"ON CONFLICT ({_q(key)}) DO NOTHING RETURNING {', '.join(map(_q, returning))}"
    )
    params = [{c: (Json(r[c]) if c in json_cols and r[c] is not None else r[c]) for c in cols} for r in rows]
    cur = _driver_cursor(conn)
    try:
        cur.executemany(sql, params, returning=True)
        out: list[tuple] = []
        while True:
            out.extend(tuple(row) for row in cur.fetchall())
            if not cur.nextset():
                break
        return out
    finally:
        cur.close()


def insert_counted(session: Session, table, cols: Sequence[str], rows: Sequence[tuple], *, count_by: int) -> Counter:
    """INSERT … ON CONFLICT DO NOTHING of plain-valued tuples; returns how many rows this call
    inserted per value of their first ``count_by`` columns. Exact under concurrent writers (a
    conflicting row counts for the transaction that inserted it), so counters kept from these
    numbers need no recount.

    ``rows`` are sorted by the caller (one lock order for all writers)."""
    out: Counter = Counter()
    if not rows:
        return out
    conn = session.connection()
    names = ", ".join(map(_q, cols))
    cur = _driver_cursor(conn)
    try:
        if conn.dialect.name == "sqlite":
            # One executemany per group: its rowcount is the group's inserted rows.
            sql = f"INSERT INTO {_q(table.name)} ({names}) VALUES ({', '.join('?' * len(cols))}) ON CONFLICT DO NOTHING"
            prefix = itemgetter(*range(count_by)) if count_by > 1 else itemgetter(0)
            start = 0
            for end in range(1, len(rows) + 1):
                if end == len(rows) or prefix(rows[end]) != prefix(rows[start]):
                    cur.executemany(sql, rows[start:end])
                    if cur.rowcount:
                        out[prefix(rows[start])] += cur.rowcount
                    start = end
            return out
        # PostgreSQL: one statement over arrays, one round trip; RETURNING tells the groups.
        types = [table.c[c].type.compile(dialect=conn.dialect) for c in cols]
        arrays = ", ".join(f"%s::{t}[]" for t in types)
        sql = (
            f"INSERT INTO {_q(table.name)} ({names}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING "
            f"RETURNING {', '.join(map(_q, cols[:count_by]))}"
        )
        cur.execute(sql, [list(col) for col in zip(*rows, strict=True)])
        for got in cur.fetchall():
            out[got[0] if count_by == 1 else tuple(got)] += 1
        return out
    finally:
        cur.close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_PROCESSORS: dict = {}


def _sqlite_datetime(value):
    # Exactly SQLAlchemy's SQLite storage format (always six digits of microseconds: the column
    # is compared as text), from an aware datetime, in UTC.
    if value is None:
        return None
    if value.tzinfo is not None:
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        value = value.replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _same(value):
    return value


def driver_params(dialect: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(datetime → driver parameter, JSON value → driver parameter) for a raw executemany on this
    dialect: SQLite takes SQLAlchemy's UTC text and JSON text, psycopg datetimes and Json."""
    if dialect == "sqlite":
        return _sqlite_datetime, _json_text
    from psycopg.types.json import Json

    return _same, Json


def sql_time(session: Session, value):
    """A datetime as a raw driver parameter for this session's dialect (SQLite keeps UTC text)."""
    return _sqlite_datetime(value) if session.get_bind().dialect.name == "sqlite" else value


_JSON_MEMO: dict = {}


def _json_text(value):
    if value is None:
        return None
    if not value:
        return "{}" if isinstance(value, dict) else json.dumps(value)
    # Version maps repeat across a batch ({"torch": "2.3.0", …}): serialise each once.
    # Only string-to-string maps: 1 == True would make two different dicts one key.
    key = (
        tuple(value.items())
        if isinstance(value, dict) and len(value) <= 16 and all(type(v) is str for v in value.values())
        else None
    )
    hit = _JSON_MEMO.get(key) if key is not None else None
    if hit is not None:
        return hit
    text = json.dumps(value)
    if key is not None:
        if len(_JSON_MEMO) > 4096:
            _JSON_MEMO.clear()
        _JSON_MEMO[key] = text
    return text


def _sqlite_params(table, cols: list[str], rows: Sequence[dict], dialect) -> list[tuple]:
    """Row tuples for the driver: plain columns are picked in C (itemgetter); only the columns
    whose type needs a conversion (times, JSON) go through Python, and a batch's repeated
    values (its receive time, its version maps) are converted once."""
    procs = _bind_processors(table, cols, dialect)
    pick = itemgetter(*cols)
    convert = [(i, p) for i, p in enumerate(procs) if p is not None]
    if not convert:
        return [pick(r) for r in rows]
    out = []
    memo: dict = {}
    for r in rows:
        values = list(pick(r))
        for i, p in convert:
            v = values[i]
            if v is None:
                continue
            # datetimes and string-valued dicts repeat within a batch; key on identity+position.
            k = (i, id(v))
            hit = memo.get(k)
            if hit is None or hit[0] is not v:
                hit = memo[k] = (v, p(v))
            values[i] = hit[1]
        out.append(tuple(values))
    return out


def _bind_processors(table, cols: list[str], dialect) -> list:
    key = (table.name, tuple(cols), dialect.name)
    if key not in _PROCESSORS:
        procs = []
        for c in cols:
            col_type = table.c[c].type
            if dialect.name == "sqlite" and type(col_type).__name__ == "UTCDateTime":
                procs.append(_sqlite_datetime)
            elif isinstance(col_type, JSON):
                procs.append(_json_text)
            else:
                procs.append(col_type.dialect_impl(dialect).bind_processor(dialect))
        _PROCESSORS[key] = procs
    return _PROCESSORS[key]
