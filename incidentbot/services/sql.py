"""Dialect helpers: the same upsert on SQLite and PostgreSQL, and the bulk insert ingest needs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timezone

from sqlalchemy import JSON, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

__all__ = ["insert_for", "insert_new"]


def insert_for(session: Session, table):
    """An INSERT that knows ``on_conflict_do_nothing``/``do_update`` for this session's dialect."""
    name = session.get_bind().dialect.name
    return (sqlite.insert if name == "sqlite" else postgresql.insert)(table)


def insert_new(session: Session, table, rows: Sequence[dict], *, key: str, returning: Sequence[str] | None = None) -> list[tuple]:
    """Insert the rows whose ``key`` (a unique column) is not stored yet; return ``returning``
    columns of the rows this call inserted (by default the key). Exact under concurrent writers.

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
            existing.update(conn.execute(select(col).where(col.in_(keys[i:i + 900]))).scalars())
        fresh = [r for r in rows if r[key] not in existing]
        if fresh:
            # The driver's executemany with the columns' own bind processors: SQLAlchemy's
            # per-row parameter machinery costs more than SQLite's insert at this size.
            cols = list(fresh[0])
            procs = _bind_processors(table, cols, conn.dialect)
            sql = (f"INSERT INTO {_q(table.name)} ({', '.join(map(_q, cols))}) VALUES ({', '.join('?' * len(cols))}) "
                   f"ON CONFLICT ({_q(key)}) DO NOTHING")
            cur = conn.connection.driver_connection.cursor()
            try:
                cur.executemany(sql, [tuple(p(r[c]) if p else r[c] for c, p in zip(cols, procs)) for r in fresh])
            finally:
                cur.close()
        return [tuple(r[c] for c in returning) for r in fresh]
    from psycopg.types.json import Json

    cols = list(rows[0])
    json_cols = {c.name for c in table.columns if isinstance(c.type, JSON)}
    sql = (f"INSERT INTO {_q(table.name)} ({', '.join(map(_q, cols))}) VALUES ({', '.join(f'%({c})s' for c in cols)}) "
           f"ON CONFLICT ({_q(key)}) DO NOTHING RETURNING {', '.join(map(_q, returning))}")
    params = [{c: (Json(r[c]) if c in json_cols and r[c] is not None else r[c]) for c in cols} for r in rows]
    cur = conn.connection.driver_connection.cursor()
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


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_PROCESSORS: dict = {}


def _sqlite_datetime(value):
    # Exactly SQLAlchemy's SQLite storage format (always six digits of microseconds: the column
    # is compared as text), from an aware datetime, in UTC.
    if value is None:
        return None
    if value.tzinfo is not None:
        if value.tzinfo is not timezone.utc:
            value = value.astimezone(timezone.utc)
        value = value.replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


_JSON_MEMO: dict = {}


def _json_text(value):
    if value is None:
        return None
    if not value:
        return "{}" if isinstance(value, dict) else json.dumps(value)
    # Version maps repeat across a batch ({"torch": "2.3.0", …}): serialise each once.
    # Only string-to-string maps: 1 == True would make two different dicts one key.
    key = (tuple(value.items()) if isinstance(value, dict) and len(value) <= 16
           and all(type(v) is str for v in value.values()) else None)
    hit = _JSON_MEMO.get(key) if key is not None else None
    if hit is not None:
        return hit
    text = json.dumps(value)
    if key is not None:
        if len(_JSON_MEMO) > 4096:
            _JSON_MEMO.clear()
        _JSON_MEMO[key] = text
    return text


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
