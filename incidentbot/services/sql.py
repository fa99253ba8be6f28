"""Dialect helpers: the same upsert on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

__all__ = ["insert_for"]


def insert_for(session: Session, table):
    """An INSERT that knows ``on_conflict_do_nothing``/``do_update`` for this session's dialect."""
    name = session.get_bind().dialect.name
    return (sqlite.insert if name == "sqlite" else postgresql.insert)(table)
