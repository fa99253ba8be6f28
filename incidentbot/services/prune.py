"""Trim old raw events; signatures (with their counters), hypotheses and their timelines stay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from incidentbot import audit
from incidentbot.db import Database
from incidentbot.models import Event, utcnow

__all__ = ["prune"]


def prune(db: Database, *, older_than: timedelta, clock: Callable[[], datetime] = utcnow, batch: int = 10_000) -> int:
    """Delete events received before ``now - older_than`` in batches (short write transactions,
    so ingest keeps flowing). Returns how many were deleted."""
    cutoff = clock() - older_than
    total = 0
    while True:
        with db.write() as session:
            ids = list(session.scalars(select(Event.id).where(Event.received_at < cutoff).order_by(Event.id).limit(batch)))
            if not ids:
                if total:
                    audit.note(session, f"pruned {total:,} events received before {cutoff:%Y-%m-%d %H:%M} UTC")
                return total
            session.execute(delete(Event).where(Event.id.in_(ids)))
            total += len(ids)
