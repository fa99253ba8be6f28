"""How many new-signature alerts a flood may post: a quota per job and per window, and a roll-up.

A training job that prints unique text (a random-word log, a tensor dump per step) makes a new
signature per line. An alert for each would bury the channel, and nobody reads the 400th. So in
each window (10 minutes by default) a job gets a few alerts of its own; beyond them its new
signatures are counted in one roll-up message, "N more new failure modes in job X", edited in
place as the count grows. The whole service gets a total per window as well (roll-ups
included), so a flood spread over many job ids is bounded too; what is refused there goes to one
service-wide roll-up. At most ``total + 1`` messages per window, whatever arrives.

The counters are rows (``NewSignatureQuota``), read and written inside the ingest transaction
under a row lock, so replicas share one quota and a rolled-back batch takes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from incidentbot.models import NewSignatureQuota, table_of
from incidentbot.services import messages
from incidentbot.services.outbox import queue
from incidentbot.services.sql import insert_for

__all__ = ["NewSignaturePolicy", "QueuedAlerts", "queue_new_signature_alerts", "rollup_key", "SAMPLE_SIZE"]

SAMPLE_SIZE = 10  # held-back signature ids named in a roll-up's text
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class NewSignaturePolicy:
    per_job: int = 10  # alerts of its own a job gets per window
    total: int = 40  # messages (alerts and roll-ups) the whole service gets per window
    window: timedelta = timedelta(minutes=10)


@dataclass(slots=True)
class QueuedAlerts:
    alerted: list[int] = field(default_factory=list)  # signatures that got an alert of their own
    rolled: list[int] = field(default_factory=list)  # signatures counted in a roll-up instead


def _window_start(now: datetime, window: timedelta) -> datetime:
    width = window.total_seconds()
    return _EPOCH + timedelta(seconds=(now - _EPOCH).total_seconds() // width * width)


def rollup_key(window_start: datetime, job_id: str | None) -> str:
    # A job id may be 256 characters of anything: a digest keeps the key short and inert.
    who = "*" if job_id is None else hashlib.blake2b(job_id.encode(), digest_size=12).hexdigest()
    return f"{window_start:%Y%m%dT%H%M%S}:{who}"


def _locked_row(session, *, key: str, window_start: datetime, job_id: str | None) -> NewSignatureQuota:
    session.execute(
        insert_for(session, table_of(NewSignatureQuota))
        .values(key=key, window_start=window_start, job_id=job_id, announced=0, rolled=0, sample=[])
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return session.scalars(select(NewSignatureQuota).where(col(NewSignatureQuota.key) == key).with_for_update()).one()


def _roll(session, row: NewSignatureQuota, sids: list[int], *, channel: str) -> None:
    """Count ``sids`` in ``row``'s roll-up: post it the first time, edit it in place after."""
    if not sids:
        return
    first = row.rolled == 0
    row.rolled += len(sids)
    if len(row.sample) < SAMPLE_SIZE:
        row.sample = list(row.sample) + sids[: SAMPLE_SIZE - len(row.sample)]
    if first:
        queue(session, messages.signature_rollup(channel=channel, quota_key=row.key))
    else:
        queue(session, messages.signature_rollup_edit(quota_key=row.key))


def queue_new_signature_alerts(
    session, *, new: list[tuple[int, str]], channel: str, policy: NewSignaturePolicy, now: datetime
) -> QueuedAlerts:
    """Queue alerts for new signatures, given as (signature id, job of its first event), within
    the quotas; the rest go to roll-ups. Call inside the transaction that created them."""
    out = QueuedAlerts()
    if not new:
        return out
    start = _window_start(now, policy.window)
    by_job: dict[str, list[int]] = {}
    for sid, job in new:
        by_job.setdefault(job, []).append(sid)
    # Lock order: the service-wide row, then job rows by key, the same in every transaction.
    service = _locked_row(session, key=rollup_key(start, None), window_start=start, job_id=None)
    refused: list[int] = []
    for job in sorted(by_job, key=lambda j: rollup_key(start, j)):
        sids = sorted(by_job[job])
        row = _locked_row(session, key=rollup_key(start, job), window_start=start, job_id=job)
        own = max(0, policy.per_job - row.announced)
        want, over = sids[:own], sids[own:]
        room = max(0, policy.total - service.announced)
        granted, refused_here = want[:room], want[room:]
        service.announced += len(granted)
        row.announced += len(granted)
        for sid in granted:
            queue(session, messages.alert(channel=channel, signature_id=sid))
        out.alerted += granted
        refused += refused_here
        if over:
            if row.rolled == 0:
                # A job's first roll-up is a message of its own, so it needs room in the total.
                if service.announced < policy.total:
                    service.announced += 1
                else:
                    refused += over
                    over = []
            _roll(session, row, over, channel=channel)
            out.rolled += over
    _roll(session, service, sorted(refused), channel=channel)
    out.rolled += refused
    return out
