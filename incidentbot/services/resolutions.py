"""Resolving, rejecting and reopening hypotheses; regressions when a resolved failure returns."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from incidentbot.db import Database
from incidentbot.models import Hypothesis, HypothesisLog, HypothesisSignature, id_of, utcnow
from incidentbot.services import messages
from incidentbot.services.outbox import queue
from incidentbot.services.signatures import canonical_map
from incidentbot.services.versions import version_at_least
from incidentbot.services.votes import VoteService

__all__ = ["ResolutionService", "ResolutionError"]

log = logging.getLogger(__name__)


class ResolutionError(ValueError):
    pass


def _get(session, hid: int) -> Hypothesis:
    h = session.get(Hypothesis, hid)
    if h is None:
        raise ResolutionError(f"H-{hid} does not exist")
    return h


class ResolutionService:
    def __init__(
        self, db: Database, *, votes: VoteService, channel: str | None, clock: Callable[[], datetime] = utcnow
    ):
        self.db = db
        self.votes = votes
        self.channel = channel
        self.clock = clock

    def _thread_note(self, session, hid: int, note: str, *, sid: int | None = None, **facts) -> None:
        """A reply in the thread of signature ``sid``'s alert (by default the hypothesis's biggest
        signature). The facts are plain values: the Slack side words and escapes them."""
        if not self.channel:
            return
        if sid is None:
            sid = session.scalar(
                select(col(HypothesisSignature.signature_id))
                .where(col(HypothesisSignature.hypothesis_id) == hid)
                .order_by(col(HypothesisSignature.event_count).desc(), col(HypothesisSignature.signature_id))
            )
        if sid is None:
            return
        queue(
            session,
            messages.thread_note(
                channel=self.channel, thread_key=messages.alert_key(sid), note=note, hypothesis_id=hid, **facts
            ),
        )

    def resolve(self, hid: int, *, cause: str, fix: str = "", link: str = "", fixed_in: str = "", actor: str) -> None:
        if not cause.strip():
            raise ResolutionError("a resolution needs a cause")
        now = self.clock()
        with self.db.write() as session:
            h = _get(session, hid)
            h.status = "resolved"
            h.resolution = {
                "cause": cause.strip()[:2000],
                "fix": fix.strip()[:2000],
                "link": link.strip()[:500],
                "fixed_in": fixed_in.strip()[:128],
                "by": actor,
                "at": now.isoformat(),
            }
            h.resolved_at = now
            h.updated_at = now
            session.add(
                HypothesisLog(
                    hypothesis_id=hid,
                    at=now,
                    kind="resolved",
                    actor=actor,
                    text=f"resolved: {cause.strip()[:300]}" + (f" (fixed in {fixed_in})" if fixed_in else ""),
                )
            )
            merged = session.scalars(select(col(Hypothesis.id)).where(col(Hypothesis.merged_into) == hid))
            absorbed = [m for m in merged if m is not None]  # keys: the filter only narrows the type
            self.votes.record_outcome(session, hypothesis_id=hid, true_cause=True, absorbed=absorbed)
            self._thread_note(session, hid, "resolved", actor=actor, cause=cause)

    def reject(self, hid: int, *, reason: str, actor: str) -> None:
        if not reason.strip():
            raise ResolutionError("say why it is rejected: `reject H-n REASON`")
        now = self.clock()
        with self.db.write() as session:
            h = _get(session, hid)
            h.status = "rejected"
            h.resolution = {"rejected_reason": reason.strip()[:2000], "by": actor, "at": now.isoformat()}
            h.updated_at = now
            session.add(
                HypothesisLog(
                    hypothesis_id=hid, at=now, kind="rejected", actor=actor, text=f"rejected: {reason.strip()[:300]}"
                )
            )
            self.votes.record_outcome(session, hypothesis_id=hid, true_cause=False)

    def reopen(self, hid: int, *, actor: str) -> None:
        now = self.clock()
        with self.db.write() as session:
            h = _get(session, hid)
            if h.status not in ("resolved", "rejected", "obsolete"):
                raise ResolutionError(f"H-{hid} is {h.status}, not resolved or rejected")
            previous = h.status
            h.status = "open"
            h.updated_at = now
            session.add(
                HypothesisLog(
                    hypothesis_id=hid, at=now, kind="reopened", actor=actor, text=f"reopened (was {previous})"
                )
            )

    def check_regressions(self, session, rows: Sequence[dict]) -> list[int]:
        """Called in the ingest transaction: reopen resolved hypotheses whose signatures return
        on the fixed version or later. Returns the ids reopened."""
        sids = {r["signature_id"] for r in rows}
        if not sids:
            return []
        cmap = canonical_map(session)
        canon = {sid: cmap.get(sid, sid) for sid in sids}
        found = session.execute(
            select(col(HypothesisSignature.signature_id), Hypothesis)
            .join(Hypothesis, col(Hypothesis.id) == col(HypothesisSignature.hypothesis_id))
            .where(col(HypothesisSignature.signature_id).in_(set(canon.values())), col(Hypothesis.status) == "resolved")
        ).all()
        if not found:
            return []
        by_sig: dict[int, list[Hypothesis]] = {}
        for sid, h in found:
            by_sig.setdefault(sid, []).append(h)
        reopened = []
        now = self.clock()
        for r in rows:
            for h in by_sig.get(canon[r["signature_id"]], []):
                if h.status != "resolved" or not in_scope(h.scope or {}, r):
                    continue
                fixed_in = (h.resolution or {}).get("fixed_in") or ""
                actual = None
                if fixed_in:
                    name, sep, ver = fixed_in.partition("=")
                    actual = (r.get("versions") or {}).get(name.strip()) if sep else r.get("code_version")
                    if not version_at_least(actual, ver.strip() if sep else fixed_in):
                        continue
                # The time the event says it happened: one stored at receive time because its
                # clock was off (sent_time) still tells that it ran before the fix.
                happened = r.get("sent_time") or r["time"]
                if happened <= (h.resolved_at or now) and not actual:
                    # An old event arriving late is not a regression, unless it says it ran the
                    # fixed version (then the fix did not hold, whenever it was sent).
                    continue
                hid = id_of(h)
                h.status = "regressed"
                h.updated_at = now
                h.last_activity_at = now
                where = f"job {r['job_id']}" + (f" on {r['code_version']}" if r.get("code_version") else "")
                prev = h.resolution or {}
                session.add(
                    HypothesisLog(
                        hypothesis_id=hid,
                        at=now,
                        kind="regressed",
                        text=f"regressed: S-{canon[r['signature_id']]} came back in {where} "
                        f"after the resolution '{prev.get('cause', '')[:200]}'",
                    )
                )
                self._thread_note(
                    session,
                    hid,
                    "regressed",
                    sid=canon[r["signature_id"]],
                    by=prev.get("by", ""),
                    cause=prev.get("cause", ""),
                    fix=prev.get("fix", ""),
                    fixed_in=fixed_in,
                    where=where,
                )
                reopened.append(hid)
        return reopened


def in_scope(scope: dict, row: dict) -> bool:
    """Whether an event falls inside a hypothesis's scope (pure). A fault resolved on one host
    (one GPU, one job) does not regress when the same text appears elsewhere: that is a new
    occurrence, for the analysis to explain. An event that does not say where it ran cannot show
    that the fix failed where it was made, so it is outside a scoped hypothesis too."""
    hosts = scope.get("hosts")
    if hosts and row.get("host") not in hosts:
        return False
    gpus = scope.get("gpus")
    if gpus and row.get("gpu") is not None and f"{row.get('host')}/{row.get('gpu')}" not in gpus:
        return False
    jobs = scope.get("jobs")
    if jobs and row.get("job_id") not in jobs:
        return False
    return True
