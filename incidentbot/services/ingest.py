"""Store events durably, exactly once, and keep signature counters in the same transaction."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, select, update

from incidentbot import signatures
from incidentbot.db import Database
from incidentbot.ingest.schema import EventIn
from incidentbot.models import Event, Outbox, Signature, SignatureMember, utcnow
from incidentbot.services.sql import insert_for

__all__ = ["IngestResult", "IngestService"]

log = logging.getLogger(__name__)

_EVENT = Event.__table__
_SIG = Signature.__table__
_MEMBER = SignatureMember.__table__


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    new_signature_ids: list[int] = field(default_factory=list)
    # signature id → events accepted for it in this batch (for regression checks and metrics)
    per_signature: dict[int, int] = field(default_factory=dict)


def _member_value(text: str) -> str:
    return text if len(text) <= 200 else text[:150] + "#" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class IngestService:
    """Turns validated events into rows. One instance per process; it caches fingerprint → id,
    which is safe because signature rows are never deleted or re-keyed."""

    def __init__(self, db: Database, *, channel: str | None = None, clock: Callable[[], datetime] = utcnow,
                 after_commit: Callable[[IngestResult], None] | None = None):
        self.db = db
        self.channel = channel
        self.clock = clock
        self.after_commit = after_commit
        self._sig_ids: dict[str, int] = {}
        self.regression_hook: Callable | None = None

    def ingest(self, events: Sequence[EventIn], *, source: str = "api") -> IngestResult:
        now = self.clock()
        rows: list[dict] = []
        fps: dict[str, signatures.Fingerprint] = {}
        seen: set[str] = set()
        result = IngestResult()
        for ev in events:
            event_id = ev.event_id or f"ev-{uuid.uuid4().hex}"
            if event_id in seen:
                result.duplicates += 1
                continue
            seen.add(event_id)
            fp = signatures.fingerprint(ev.message)
            fps.setdefault(fp.key, fp)
            rows.append({
                "event_id": event_id, "job_id": ev.job_id, "message": ev.message, "time": ev.time or now,
                "received_at": now, "source": source, "cluster": ev.cluster, "host": ev.host, "gpu": ev.gpu,
                "rank": ev.rank, "step": ev.step, "code_version": ev.code_version, "versions": ev.versions,
                "kind": ev.kind, "attributes": ev.attributes, "signature_id": fp.key,  # key → id below
            })
        if not rows:
            return result
        with self.db.write() as session:
            new_ids = self._ensure_signatures(session, fps, rows)
            for row in rows:
                row["signature_id"] = self._sig_ids[row["signature_id"]]
            stmt = insert_for(session, _EVENT).on_conflict_do_nothing(index_elements=["event_id"]).returning(_EVENT.c.event_id)
            inserted = {r[0] for r in session.execute(stmt, rows)}
            result.accepted = len(inserted)
            result.duplicates += len(rows) - len(inserted)
            if inserted:
                self._update_counters(session, [r for r in rows if r["event_id"] in inserted], result)
            result.new_signature_ids = sorted(new_ids)
            if self.channel:
                for sid in result.new_signature_ids:
                    session.add(Outbox(op="post", message_key=f"alert:S-{sid}", dedupe_key=f"post:alert:S-{sid}",
                                       channel=self.channel, payload={"render": "signature_alert", "signature_id": sid}))
            if self.regression_hook and result.per_signature:
                self.regression_hook(session, [r for r in rows if r["event_id"] in inserted])
        if self.after_commit:
            self.after_commit(result)
        return result

    def _ensure_signatures(self, session, fps: dict[str, signatures.Fingerprint], rows: list[dict]) -> set[int]:
        missing = [k for k in fps if k not in self._sig_ids]
        if not missing:
            return set()
        first_time: dict[str, datetime] = {}
        example: dict[str, str] = {}
        for r in rows:
            k = r["signature_id"]
            if k in fps and (k not in first_time or r["time"] < first_time[k]):
                first_time[k] = r["time"]
                example.setdefault(k, r["message"][:4000])
        values = []
        for k in missing:
            fp = fps[k]
            values.append({
                "fingerprint": k, "rules_version": signatures.RULES_VERSION, "title": fp.title[:512], "category": fp.category,
                "cause_class": fp.cause_class, "parser": fp.parser, "template": fp.template, "details": dict(fp.details),
                "example": example.get(k, ""), "count": 0, "first_seen": first_time[k], "last_seen": first_time[k],
                "created_at": self.clock(),
            })
        stmt = insert_for(session, _SIG).on_conflict_do_nothing(index_elements=["fingerprint"]).returning(_SIG.c.id)
        new_ids = {r[0] for r in session.execute(stmt, values)}
        for sid, key in session.execute(select(_SIG.c.id, _SIG.c.fingerprint).where(_SIG.c.fingerprint.in_(missing))):
            self._sig_ids[key] = sid
        return new_ids

    def _update_counters(self, session, rows: list[dict], result: IngestResult) -> None:
        agg: dict[int, list] = {}
        members: set[tuple[int, str, str]] = set()
        for r in rows:
            sid = r["signature_id"]
            a = agg.get(sid)
            if a is None:
                agg[sid] = [1, r["time"], r["time"]]
            else:
                a[0] += 1
                if r["time"] < a[1]:
                    a[1] = r["time"]
                if r["time"] > a[2]:
                    a[2] = r["time"]
            members.add((sid, "job", _member_value(r["job_id"])))
            if r["host"]:
                members.add((sid, "host", _member_value(r["host"])))
            if r["rank"] is not None:
                members.add((sid, "rank", _member_value(f"{r['job_id']}#{r['rank']}")))
        added: dict[int, dict[str, int]] = defaultdict(lambda: {"job": 0, "host": 0, "rank": 0})
        stmt = (insert_for(session, _MEMBER).on_conflict_do_nothing()
                .returning(_MEMBER.c.signature_id, _MEMBER.c.dim))
        for sid, dim in session.execute(stmt, [{"signature_id": s, "dim": d, "value": v} for s, d, v in members]):
            added[sid][dim] += 1
        params = []
        for sid, (n, first, last) in agg.items():
            a = added[sid]
            params.append({"sid": sid, "n": n, "first": first, "last": last, "j": a["job"], "h": a["host"], "r": a["rank"]})
            result.per_signature[sid] = n
        c = _SIG.c
        # Ordered by id so two replicas updating the same signatures lock rows in one order.
        params.sort(key=lambda p: p["sid"])
        stmt = (update(_SIG).where(c.id == bindparam("sid")).values(
            count=c.count + bindparam("n"), job_count=c.job_count + bindparam("j"),
            host_count=c.host_count + bindparam("h"), rank_count=c.rank_count + bindparam("r")))
        session.connection().execute(stmt, params)
        # first/last seen: only move outwards (events may arrive out of order).
        from sqlalchemy import case
        stmt2 = (update(_SIG).where(c.id == bindparam("sid")).values(
            first_seen=case((c.first_seen > bindparam("first"), bindparam("first")), else_=c.first_seen),
            last_seen=case((c.last_seen < bindparam("last"), bindparam("last")), else_=c.last_seen)))
        session.connection().execute(stmt2, [{"sid": p["sid"], "first": p["first"], "last": p["last"]} for p in params])
