"""Each request from Slack acted on once, however often Slack delivers it.

Slack retries an Events API delivery when the ack is slow (``X-Slack-Retry-Num``), and a
command or click can reach the bot twice (a client resend, a Socket Mode reconnect). Every
delivery is keyed (the event id; otherwise the ``trigger_id`` with the whole payload) and
claimed as a ``workclaim`` row before any handler runs, so the claim holds across replicas.
Keys are kept for an hour, longer than Slack's retries (three within minutes) and its 5-minute
signature window. The claim is taken before acting: a delivery is acted on at most once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import col

from incidentbot.db import Database
from incidentbot.models import WorkClaim, table_of, utcnow
from incidentbot.services.sql import insert_for

__all__ = ["DeliveryLog", "delivery_key", "KEEP", "PREFIX"]

KEEP = timedelta(hours=1)
PREFIX = "slack-delivery:"
PRUNE_EVERY = timedelta(minutes=1)


def delivery_key(body: Mapping[str, Any]) -> str | None:
    """The identity of one delivery: ``event:<event_id>``, or a hash of the trigger_id and the
    payload for commands and interactions (a retry re-sends the same payload and trigger)."""
    event_id = body.get("event_id")
    if isinstance(event_id, str) and event_id:
        return f"event:{event_id[:100]}"
    if not body:
        return None
    trigger = str(body.get("trigger_id") or "")
    digest = hashlib.sha256((trigger + "\n" + json.dumps(body, sort_keys=True, default=str)).encode()).hexdigest()
    return f"payload:{digest[:64]}"


class DeliveryLog:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow, keep: timedelta = KEEP):
        self.db = db
        self.clock = clock
        self.keep = keep
        self._pruned_at: datetime | None = None

    def first_time(self, key: str, *, by: str) -> bool:
        """Claim ``key``; True when this is its first delivery within ``keep``."""
        now = self.clock()
        row_key = PREFIX + key
        with self.db.write() as session:
            if self._pruned_at is None or now - self._pruned_at > PRUNE_EVERY:
                session.execute(
                    delete(WorkClaim).where(
                        col(WorkClaim.key).startswith(PREFIX, autoescape=True),
                        col(WorkClaim.claimed_at) < now - self.keep,
                    )
                )
                self._pruned_at = now
            else:
                # This key's own expired claim (a delivery an hour old is a new one).
                session.execute(
                    delete(WorkClaim).where(col(WorkClaim.key) == row_key, col(WorkClaim.claimed_at) < now - self.keep)
                )
            stmt = (
                insert_for(session, table_of(WorkClaim))
                .values(key=row_key, claimed_at=now, claimed_by=by[:128])
                .on_conflict_do_nothing()
                .returning(table_of(WorkClaim).c.key)
            )
            return session.execute(stmt).first() is not None
