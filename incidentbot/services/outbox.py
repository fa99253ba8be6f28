"""Slack delivery through the outbox table.

Every message to post or edit is a row written in the same transaction as its cause. A worker
delivers one row at a time (:meth:`OutboxWorker.deliver_one`), claiming it with a conditional
UPDATE so several workers or replicas never send the same row. Errors split two ways (as
healthchecks' transports do): transient ones (429 with Retry-After, 5xx, network) are retried with
back-off; permanent ones (``channel_not_found``, ``invalid_blocks``…) are recorded on the row and
reported, not retried forever. A post whose outcome is unknown (the process died, or the network
dropped the answer) is looked up in the channel by its metadata before it is sent again, so a
restart neither loses nor doubles a message.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import delete, func, select, update
from sqlmodel import col

from incidentbot import audit
from incidentbot.db import Database
from incidentbot.models import Outbox, SlackMessage, table_of, utcnow
from incidentbot.services.messages import Message
from incidentbot.services.sql import insert_for, rowcount

__all__ = [
    "OutboxWorker",
    "enqueue",
    "queue",
    "priority_of",
    "prune_delivered",
    "PERMANENT_ERRORS",
    "PRIORITY",
    "Rendered",
]

log = logging.getLogger(__name__)

PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "no_text",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "restricted_action",
        "missing_scope",
        "invalid_arguments",
        "too_many_attachments",
        "user_not_found",
        "user_not_in_channel",
        "expired_url",
        "used_url",
        "no_such_subteam",
        "invalid_metadata_format",
        "metadata_too_large",
        "ekm_access_denied",
    }
)
CLAIM_FOR = timedelta(seconds=60)
UNKNOWN_OUTCOME = "unknown: the attempt did not record how it ended"
RATELIMITED = "ratelimited"  # the last_error of a row waiting out a 429's Retry-After
MAX_ATTEMPTS = 50
METADATA_TYPE = "incidentbot_outbox"


# Delivery order by what a message is (lower first). A person waiting on an answer comes first;
# polls and digests must never wait behind an alert backlog (a storm of new signatures queues
# hundreds of alerts); edits and thread notes of alerts come last with the alerts themselves.
PRIORITY = {
    "ephemeral": 0,
    "response": 0,
    "view": 0,
    "poll": 1,
    "digest": 2,
    "hypothesis": 3,
    "signature_rollup": 5,
    "signature_alert": 5,
    "note": 5,  # thread notes of alerts (resolved, regressed, spread)
}
DEFAULT_PRIORITY = 5


def priority_of(op: str, payload: dict | None) -> int:
    if op in PRIORITY:
        return PRIORITY[op]
    return PRIORITY.get((payload or {}).get("render") or "", DEFAULT_PRIORITY)


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    blocks: list[dict] | None = None
    # What the message showed (e.g. a signature's count), handed to ``on_delivered``.
    shown: dict | None = None


def enqueue(
    session,
    *,
    op: str,
    channel: str | None,
    payload: dict,
    message_key: str | None = None,
    thread_key: str | None = None,
    dedupe_key: str | None = None,
    priority: int | None = None,
) -> bool:
    """Add a row unless one with the same dedupe key exists. Returns whether it was added."""
    stmt = insert_for(session, table_of(Outbox)).values(
        op=op,
        channel=channel,
        payload=payload,
        message_key=message_key,
        thread_key=thread_key,
        dedupe_key=dedupe_key,
        priority=priority_of(op, payload) if priority is None else priority,
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
        created_at=utcnow(),
    )
    if dedupe_key:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    # RETURNING, not rowcount: with PostgreSQL's implicit RETURNING the rowcount is not reliable.
    return session.execute(stmt.returning(table_of(Outbox).c.id)).first() is not None


def queue(session, message: Message) -> bool:
    """Add ``message`` (built by :mod:`incidentbot.services.messages`) unless its dedupe key is
    taken. Returns whether it was added."""
    return enqueue(
        session,
        op=message.op,
        channel=message.channel,
        payload=message.payload,
        message_key=message.message_key,
        thread_key=message.thread_key,
        dedupe_key=message.dedupe_key,
    )


def prune_delivered(
    db: Database,
    *,
    older_than: timedelta = timedelta(hours=1),
    limit: int = 5000,
    clock: Callable[[], datetime] = utcnow,
) -> int:
    """One unit of work: delete up to ``limit`` delivered rows that no longer guard anything.

    A row that still holds its dedupe key is the record that its message was queued once (an
    alert, a poll, an announcement), so it stays: those are bounded by the messages that exist.
    Delivered edits (which leave their dedupe slot when claimed), thread notes and ephemeral
    replies are what a storm makes by the thousand; they go after ``older_than``, so the outbox
    is bounded by what is pending plus one row per message. Returns how many rows went.
    """
    cutoff = clock() - older_than
    with db.write() as session:
        ids = list(
            session.scalars(
                select(col(Outbox.id))
                .where(
                    col(Outbox.status) == "done", col(Outbox.dedupe_key).is_(None), col(Outbox.delivered_at) < cutoff
                )
                .order_by(col(Outbox.id))
                .limit(limit)
            )
        )
        if ids:
            session.execute(delete(Outbox).where(col(Outbox.id).in_(ids)))
    return len(ids)


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        *,
        client: WebClient,
        render: Callable[[object, Outbox], Rendered | None],
        clock: Callable[[], datetime] = utcnow,
        worker_id: str = "worker",
        on_delivered: Callable[[object, Outbox, Rendered], None] | None = None,
        metrics=None,
    ):
        self.db = db
        self.client = client
        self.render = render
        self.clock = clock
        self.worker_id = worker_id
        self.on_delivered = on_delivered
        self.metrics = metrics
        self.delivered = 0
        self.errors: dict[str, int] = {}

    def backlog(self) -> int:
        with self.db.read() as session:
            return session.scalar(select(func.count()).select_from(Outbox).where(col(Outbox.status) == "pending")) or 0

    def drain(self, *, limit: int = 1000) -> int:
        """Deliver until nothing is due (or ``limit`` rows); returns how many were handled."""
        n = 0
        while n < limit and self.deliver_one():
            n += 1
        return n

    # -- one unit of work ----------------------------------------------------------------

    def _claim(self) -> tuple[Outbox, dict[str, str], str | None] | None:
        """The next due row, claimed; the refs of the message it edits or replies to; and how
        the previous attempt ended (its recorded error, or the unknown-outcome mark)."""
        now = self.clock()
        with self.db.write() as session:
            due = list(
                session.scalars(
                    select(Outbox)
                    .where(
                        col(Outbox.status) == "pending",
                        col(Outbox.next_attempt_at) <= now,
                        (col(Outbox.claimed_until).is_(None)) | (col(Outbox.claimed_until) < now),
                    )
                    .order_by(col(Outbox.priority), col(Outbox.id))
                    .limit(50)
                )
            )
            if not due:
                return None
            messages = {
                m.key: m
                for m in session.scalars(
                    select(SlackMessage).where(
                        col(SlackMessage.key).in_({k for r in due for k in (r.message_key, r.thread_key) if k})
                    )
                )
            }
            blocked_threads: set[str] = set()
            for row in due:
                needs = row.thread_key if row.op != "update" else row.message_key
                order_key = row.thread_key or (row.message_key if row.op == "update" else None)
                if order_key and order_key in blocked_threads:
                    continue  # an earlier row of this thread goes first
                if row.op == "post" and row.thread_key and self._earlier_reply_pending(session, row):
                    # An earlier reply of this thread is backing off (5xx, 429) and so is not in
                    # `due`: replies must not overtake it, or the thread reads out of order.
                    blocked_threads.add(row.thread_key)  # the order key of a reply is its thread
                    continue
                if needs and needs not in messages:
                    if self._parent_pending(session, needs):
                        if order_key:
                            blocked_threads.add(order_key)
                        continue
                    if row.op == "update":
                        row.status, row.last_error = "failed", f"message {needs} was never posted"
                        continue
                    needs = None  # its thread never started: reply at the top level instead
                previous = row.last_error
                claimed = session.execute(
                    update(Outbox)
                    .where(
                        col(Outbox.id) == row.id,
                        col(Outbox.status) == "pending",
                        (col(Outbox.claimed_until).is_(None)) | (col(Outbox.claimed_until) < now),
                    )
                    # Until this attempt records how it ended, its outcome is unknown: if the
                    # process dies after Slack took a post, the next attempt must look before
                    # posting again (whatever an earlier attempt's error was).
                    .values(
                        claimed_until=now + CLAIM_FOR,
                        attempts=Outbox.attempts + 1,
                        last_error=UNKNOWN_OUTCOME,
                        # A claimed edit renders the state of now; a change after this moment
                        # must be able to queue the next edit, so it leaves the dedupe slot.
                        dedupe_key=None if row.op == "update" else Outbox.dedupe_key,
                    )
                )
                if rowcount(claimed) != 1:
                    continue
                session.refresh(row)
                refs = {}
                if needs:
                    refs = {"channel": messages[needs].channel, "ts": messages[needs].ts}
                return row, refs, previous
        return None

    def _earlier_reply_pending(self, session, row: Outbox) -> bool:
        return (
            session.scalar(
                select(col(Outbox.id))
                .where(
                    col(Outbox.thread_key) == row.thread_key,
                    col(Outbox.op) == "post",
                    col(Outbox.status) == "pending",
                    col(Outbox.id) < row.id,
                )
                .limit(1)
            )
            is not None
        )

    def _parent_pending(self, session, key: str) -> bool:
        return (
            session.scalar(
                select(col(Outbox.id)).where(
                    col(Outbox.message_key) == key, col(Outbox.op) == "post", col(Outbox.status) == "pending"
                )
            )
            is not None
        )

    def deliver_one(self) -> bool:
        claimed = self._claim()
        if claimed is None:
            return False
        row, refs, previous = claimed
        try:
            with self.db.read() as session:
                rendered = self.render(session, row)
            if rendered is None:
                self._finish(row, ts=None, rendered=None, note="nothing to render")
                return True
            ts = self._send(row, refs, rendered, previous=previous)
        except SlackApiError as exc:
            self._failed(row, exc)
            return True
        except Exception as exc:  # noqa: BLE001 - network and unexpected errors are retried
            if self.metrics is not None:
                self.metrics.delivery_errors.labels("network").inc()
            self._retry(row, delay=self._backoff(row.attempts), error=f"unknown: {type(exc).__name__}: {exc}"[:500])
            log.warning("outbox %s: delivery error, will retry: %s", row.id, exc)
            return True
        self._finish(row, ts=ts, rendered=rendered)
        if row.attempts > 1:
            self._wake_backed_off()
        return True

    def _wake_backed_off(self) -> None:
        """A retried row just went through: Slack is back. Rows backing off after 5xx or network
        errors are due now instead of at the end of their (up to five-minute) back-off; rows
        waiting out a 429's Retry-After keep waiting."""
        now = self.clock()
        with self.db.write() as session:
            session.execute(
                update(Outbox)
                .where(
                    col(Outbox.status) == "pending",
                    col(Outbox.next_attempt_at) > now,
                    col(Outbox.last_error).is_not(None),
                    col(Outbox.last_error) != RATELIMITED,
                )
                .values(next_attempt_at=now)
            )

    def _metadata(self, row: Outbox) -> dict:
        return {"event_type": METADATA_TYPE, "event_payload": {"outbox_id": row.id}}

    def _already_posted(self, row: Outbox, channel: str, thread_ts: str | None) -> str | None:
        """When an earlier attempt's outcome is unknown, find the message it may have posted."""
        oldest = str((row.created_at - timedelta(minutes=5)).timestamp())
        try:
            if thread_ts:
                resp = self.client.conversations_replies(
                    channel=channel, ts=thread_ts, oldest=oldest, limit=200, include_all_metadata=True
                )
            else:
                resp = self.client.conversations_history(
                    channel=channel, oldest=oldest, limit=200, include_all_metadata=True
                )
        except SlackApiError:
            return None
        messages: list[dict[str, Any]] = resp.get("messages", [])
        for m in messages:
            meta = m.get("metadata") or {}
            if meta.get("event_type") == METADATA_TYPE and (meta.get("event_payload") or {}).get("outbox_id") == row.id:
                return m.get("ts")
        return None

    def _send(self, row: Outbox, refs: dict, r: Rendered, *, previous: str | None = None) -> str | None:
        p = row.payload or {}
        if row.op == "post":
            channel = refs.get("channel") or row.channel
            if not channel:
                raise ValueError(f"outbox {row.id}: a post needs a channel")
            thread_ts = refs.get("ts") if row.thread_key else None
            # Look for the message an earlier attempt may have posted: it may have died after
            # Slack took the post, and a 5xx can come after the post was stored. Only a 429
            # says for certain that nothing was posted.
            if row.attempts > 1 and previous != RATELIMITED:
                found = self._already_posted(row, channel, thread_ts)
                if found:
                    log.info("outbox %s: already posted as %s; not posting again", row.id, found)
                    return found
            resp = self.client.chat_postMessage(
                channel=channel,
                text=r.text,
                blocks=r.blocks,
                thread_ts=thread_ts,
                metadata=self._metadata(row),
                unfurl_links=False,
                unfurl_media=False,
            )
            return resp["ts"]
        if row.op == "update":
            self.client.chat_update(channel=refs["channel"], ts=refs["ts"], text=r.text, blocks=r.blocks)
            return None
        if row.op == "ephemeral":
            if not row.channel:
                raise ValueError(f"outbox {row.id}: an ephemeral message needs a channel")
            self.client.chat_postEphemeral(channel=row.channel, user=p["user"], text=r.text, blocks=r.blocks)
            return None
        raise ValueError(f"unknown outbox op {row.op!r}")

    def _finish(self, row: Outbox, *, ts: str | None, rendered: Rendered | None, note: str | None = None) -> None:
        now = self.clock()
        with self.db.write() as session:
            # The cause's row (signature, poll) is touched before the outbox row: the same lock
            # order as the transactions that write both, so PostgreSQL never sees a deadlock.
            if rendered is not None and rendered.shown and self.on_delivered:
                self.on_delivered(session, row, rendered)
            session.execute(
                update(Outbox)
                .where(col(Outbox.id) == row.id)
                .values(status="done", delivered_at=now, claimed_until=None, last_error=note)
            )
            if row.op == "post":
                audit.note(
                    session,
                    f"posted {row.message_key or 'a reply'} to {row.channel}"
                    + (f" in the thread of {row.thread_key}" if row.thread_key else "")
                    + (f" ({note})" if note else ""),
                )
            if row.op == "post" and row.message_key and ts:
                stmt = (
                    insert_for(session, table_of(SlackMessage))
                    .values(key=row.message_key, channel=row.channel, ts=ts, posted_at=now)
                    .on_conflict_do_nothing()
                )
                session.execute(stmt)
        self.delivered += 1
        if self.metrics is not None:
            self.metrics.deliveries.labels(row.op).inc()

    def _retry(self, row: Outbox, *, delay: float, error: str) -> None:
        with self.db.write() as session:
            session.execute(
                update(Outbox)
                .where(col(Outbox.id) == row.id)
                .values(
                    next_attempt_at=self.clock() + timedelta(seconds=delay), claimed_until=None, last_error=error[:500]
                )
            )

    def _backoff(self, attempts: int) -> float:
        return min(300.0, 0.5 * 2 ** min(attempts, 10)) * random.uniform(0.8, 1.2)

    def _failed(self, row: Outbox, exc: SlackApiError) -> None:
        status = getattr(exc.response, "status_code", 0)
        error = (exc.response.get("error") if hasattr(exc.response, "get") else None) or f"http_{status}"
        self.errors[error] = self.errors.get(error, 0) + 1
        if self.metrics is not None:
            self.metrics.delivery_errors.labels(error).inc()
        if status == 429:
            retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after") or "1"
            try:
                delay = max(0.0, float(retry_after))
            except ValueError:
                delay = 1.0
            # Rate limits are not failures: the attempt is given back.
            with self.db.write() as session:
                session.execute(
                    update(Outbox)
                    .where(col(Outbox.id) == row.id)
                    .values(
                        next_attempt_at=self.clock() + timedelta(seconds=delay),
                        claimed_until=None,
                        attempts=Outbox.attempts - 1,
                        last_error=RATELIMITED,
                    )
                )
            return
        if error in PERMANENT_ERRORS or row.attempts >= MAX_ATTEMPTS:
            with self.db.write() as session:
                session.execute(
                    update(Outbox)
                    .where(col(Outbox.id) == row.id)
                    .values(status="failed", claimed_until=None, last_error=error[:500])
                )
            log.error("outbox %s: Slack refused %s permanently: %s", row.id, row.op, error)
            return
        self._retry(row, delay=self._backoff(row.attempts), error=error)
