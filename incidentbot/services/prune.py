"""Trim old raw events; signatures (with their counters), hypotheses and their timelines stay.
Occurrence aggregates follow the events that remain: emptied ones are deleted, partly pruned
ones are recomputed from their remaining events, in the same transaction as the delete."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlmodel import col

from incidentbot import audit
from incidentbot.db import Database
from incidentbot.models import MIXED_GPU, Event, EventAggregate, table_of, utcnow

__all__ = ["prune", "refresh_aggregates"]


def prune(db: Database, *, older_than: timedelta, clock: Callable[[], datetime] = utcnow, batch: int = 10_000) -> int:
    """Delete events received before ``now - older_than`` in batches (short write transactions,
    so ingest keeps flowing). Returns how many were deleted."""
    cutoff = clock() - older_than
    total = 0
    e = table_of(Event).c
    while True:
        with db.write() as session:
            rows = session.execute(
                select(e.id, e.aggregate_id).where(e.received_at < cutoff).order_by(e.id).limit(batch)
            ).all()
            if not rows:
                if total:
                    audit.note(session, f"pruned {total:,} events received before {cutoff:%Y-%m-%d %H:%M} UTC")
                return total
            ids = [r[0] for r in rows]
            session.execute(delete(Event).where(col(Event.id).in_(ids)))
            # Lock order as ingest: event rows first, then aggregate rows (sorted).
            refresh_aggregates(session, sorted({r[1] for r in rows if r[1] is not None}))
            total += len(ids)


def refresh_aggregates(session, aggregate_ids: list[int]) -> None:
    """Make these aggregates agree with the events they still have: delete the empty ones,
    recompute count, times, first rank, GPU and steps of the rest."""
    e, a = table_of(Event).c, table_of(EventAggregate)
    for i in range(0, len(aggregate_ids), 500):
        chunk = aggregate_ids[i : i + 500]
        left: dict[int, list] = {}
        for aid, t, rank, gpu, step in session.execute(
            select(e.aggregate_id, e.time, e.rank, e.gpu, e.step)
            .where(e.aggregate_id.in_(chunk))
            .order_by(e.time, e.id)
        ):
            g = left.get(aid)
            if g is None:
                # count, first_time, last_time, first_rank, gpu, min_step, max_step
                left[aid] = [1, t, t, rank, gpu, step, step]
                continue
            g[0] += 1
            g[2] = t
            if g[4] != gpu:
                g[4] = MIXED_GPU
            if step is not None:
                g[5] = step if g[5] is None else min(g[5], step)
                g[6] = step if g[6] is None else max(g[6], step)
        empty = [aid for aid in chunk if aid not in left]
        if empty:
            session.execute(delete(a).where(a.c.id.in_(empty)))
        if left:
            stmt = (
                update(a)
                .where(a.c.id == bindparam("aid"))
                .values(
                    count=bindparam("n"),
                    first_time=bindparam("t0"),
                    last_time=bindparam("t1"),
                    first_rank=bindparam("r"),
                    gpu=bindparam("g"),
                    min_step=bindparam("lo"),
                    max_step=bindparam("hi"),
                )
            )
            session.connection().execute(
                stmt,
                [
                    {"aid": aid, "n": g[0], "t0": g[1], "t1": g[2], "r": g[3], "g": g[4], "lo": g[5], "hi": g[6]}
                    for aid, g in sorted(left.items())
                ],
            )
