"""The read model: what every shell shows of events, signatures and hypotheses, as plain dicts.

One home for these records, so the HTTP API, Slack, the console and the CLI show the same fields
the same way. A lookup of something that does not exist (or of an id that cannot exist, such as
``H-x``) raises :class:`LookupError` with a sentence to show; each shell says it its own way (the
API as a 404, Slack as a private reply, the console as its not-found page).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from sqlalchemy import select
from sqlmodel import Session, col

from incidentbot import signatures as sigengine
from incidentbot.db import Database
from incidentbot.ids import IdError, parse_id
from incidentbot.models import Event, Hypothesis, HypothesisLog, HypothesisSignature, Signature, id_of
from incidentbot.services.hypotheses import HypothesisService
from incidentbot.services.runbooks import RunbookService
from incidentbot.services.signatures import SignatureService, canonical_map
from incidentbot.services.votes import VoteService

__all__ = ["ReadModel", "explanation_dict"]


def _id(text: str, prefix: str) -> int:
    try:
        return parse_id(text, expect=prefix)[1]
    except IdError as exc:
        # An id that cannot exist names nothing: the same answer as one that does not exist.
        raise LookupError(str(exc)) from None


def explanation_dict(exp: sigengine.Explanation) -> dict:
    return {
        "parser": exp.parser,
        "reasons": list(exp.reasons),
        "fingerprint": exp.fingerprint.key,
        "masked": [{"kind": k, "value": v} for k, v in exp.masked[:200]],
    }


class ReadModel:
    """Read-only queries over the services' tables; every method opens its own read
    transaction unless it takes a ``session`` (then it is part of the caller's)."""

    def __init__(
        self,
        db: Database,
        *,
        signatures: SignatureService,
        hypotheses: HypothesisService,
        runbooks: RunbookService,
        votes: VoteService,
    ):
        self.db = db
        self.signatures = signatures
        self.hypotheses = hypotheses
        self.runbooks = runbooks
        self.votes = votes

    # -- events ------------------------------------------------------------------------------

    def events_page(self, *, limit: int, after: int | None) -> tuple[list[dict], int | None]:
        """Up to ``limit`` events after row id ``after``, and the row id to continue from (None
        at the end)."""
        with self.db.read() as session:
            q = select(Event).order_by(col(Event.id)).limit(limit + 1)
            if after is not None:
                q = q.where(col(Event.id) > after)
            rows = list(session.scalars(q))
            cmap = canonical_map(session)
        more = len(rows) > limit
        rows = rows[:limit]
        out = [
            dict(
                event_id=e.event_id,
                job_id=e.job_id,
                signature_id=f"S-{cmap.get(e.signature_id, e.signature_id)}",
                hypothesis_id=f"H-{e.hypothesis_id}" if e.hypothesis_id else None,
                message=e.message,
                time=e.time,
                received_at=e.received_at,
                cluster=e.cluster,
                host=e.host,
                gpu=e.gpu,
                rank=e.rank,
                step=e.step,
                code_version=e.code_version,
                versions=e.versions or {},
                kind=e.kind,
                attributes=e.attributes or {},
                source=e.source,
                run=e.run,
                attempt=e.attempt,
            )
            for e in rows
        ]
        return out, (rows[-1].id if more and rows else None)

    # -- signatures --------------------------------------------------------------------------

    def signature_record(self, session: Session, sig: Signature, merged_from: Sequence[Signature] = ()) -> dict:
        """One signature, its counts summed over the signatures merged into it."""
        members = [sig, *merged_from]
        return dict(
            id=f"S-{sig.id}",
            title=sig.title,
            category=sig.category,
            cause_class=sig.cause_class,
            template=sig.template,
            count=sum(s.count for s in members),
            first_seen=min(s.first_seen for s in members),
            last_seen=max(s.last_seen for s in members),
            runbook_ids=[c.runbook.id for c in self.runbooks.for_signature(session, sig)],
            job_count=sig.job_count,
            host_count=sig.host_count,
            rank_count=sig.rank_count,
            parser=sig.parser,
            rules_version=sig.rules_version,
            details=sig.details or {},
            merged_from=[f"S-{s.id}" for s in merged_from],
            muted_until=sig.muted_until,
        )

    def signature_with_example(self, session: Session, sig: Signature) -> dict:
        """:meth:`signature_record` with what was merged into it, and its example text."""
        merged = [s for s in self.signatures.members(session, id_of(sig)) if s.id != sig.id]
        record = self.signature_record(session, sig, merged)
        record["example"] = sig.example
        return record

    def signatures_page(self, *, limit: int, after: int | None) -> tuple[list[dict], int | None]:
        with self.db.read() as session:
            rows = self.signatures.page(session, limit=limit + 1, after=after)
            more = len(rows) > limit
            rows = rows[:limit]
            cmap = canonical_map(session)
            merged: dict[int, list[Signature]] = {}
            if cmap:
                for s in session.scalars(select(Signature).where(col(Signature.id).in_(list(cmap)))):
                    merged.setdefault(cmap[id_of(s)], []).append(s)
            out = [self.signature_record(session, s, merged.get(id_of(s), [])) for s in rows]
        return out, (rows[-1].id if more and rows else None)

    def signature_detail(self, text: str) -> dict:
        """``S-n`` with its example, the parse explained and where it was merged; LookupError
        when there is no such signature."""
        sid = _id(text, "S")
        with self.db.read() as session:
            sig = session.get(Signature, sid)
            if sig is None:
                raise LookupError(f"S-{sid} does not exist")
            cmap = canonical_map(session)
            merged = [s for s in self.signatures.members(session, sid) if s.id != sid]
            record = self.signature_record(session, sig, merged)
            record["merged_into"] = f"S-{cmap[sid]}" if sid in cmap else None
            record["example"] = sig.example
            record["explain"] = explanation_dict(sigengine.explain(sig.example)) if sig.example else None
        return record

    # -- hypotheses --------------------------------------------------------------------------

    def hypothesis_record(self, session: Session, h: Hypothesis) -> dict:
        hid = id_of(h)
        sids = self.hypotheses.signature_ids(session, hid)
        sigs = list(session.scalars(select(Signature).where(col(Signature.id).in_(sids)))) if sids else []
        return dict(
            id=f"H-{h.id}",
            title=h.title,
            status=h.status,
            cause_class=h.cause_class,
            kind=h.kind,
            signature_ids=[f"S-{s}" for s in sids],
            scope=h.scope or {},
            confidence=h.confidence,
            evidence=list(h.evidence or []),
            runbook_ids=[c.runbook.id for c in self.runbooks.for_hypothesis(session, hid, sigs)],
            event_count=h.event_count,
            created_at=h.created_at,
            last_activity_at=h.last_activity_at,
            resolution=h.resolution or {},
        )

    def hypotheses_list(self, *, status: str | None, limit: int = 500) -> list[dict]:
        """``status``: one status or several joined by commas; None for every one."""
        with self.db.read() as session:
            hs = self.hypotheses.list(session, statuses=tuple(status.split(",")) if status else None, limit=limit)
            return [self.hypothesis_record(session, h) for h in hs]

    def hypothesis_detail(self, text: str) -> dict:
        """``H-n`` with its timeline and where it was merged; LookupError when there is no such
        hypothesis."""
        hid = _id(text, "H")
        with self.db.read() as session:
            h = session.get(Hypothesis, hid)
            if h is None:
                raise LookupError(f"H-{hid} does not exist")
            record = self.hypothesis_record(session, h)
            record["timeline"] = [
                dict(at=entry.at, kind=entry.kind, text=entry.text, actor=entry.actor)
                for entry in session.scalars(
                    select(HypothesisLog).where(col(HypothesisLog.hypothesis_id) == hid).order_by(col(HypothesisLog.id))
                )
            ]
            record["merged_into"] = f"H-{h.merged_into}" if h.merged_into else None
        return record

    # -- polls and runbooks ------------------------------------------------------------------

    def polls(self, *, status: str | None, limit: int) -> list[dict]:
        with self.db.read() as session:
            # Filtered in the query, so `limit` counts polls of that status.
            return [self.votes.record(session, p) for p in self.votes.polls(session, status=status, limit=limit)]

    def runbook_usage(self) -> list[dict]:
        with self.db.read() as session:
            return self.runbooks.usage(session)

    def hypothesis_of_signature(self, sid: int) -> dict | None:
        """The live hypothesis holding most of signature ``sid``'s events (``id``, ``title``), or
        None when no hypothesis holds it."""
        with self.db.read() as session:
            hid = session.scalar(
                select(col(HypothesisSignature.hypothesis_id))
                .join(Hypothesis, col(Hypothesis.id) == col(HypothesisSignature.hypothesis_id))
                .where(col(HypothesisSignature.signature_id) == sid, col(Hypothesis.merged_into).is_(None))
                .order_by(col(HypothesisSignature.event_count).desc())
            )
            h = session.get(Hypothesis, hid) if hid else None
            return {"id": f"H-{h.id}", "title": h.title} if h is not None else None

    # -- the hypothesis page ----------------------------------------------------------------

    def hypothesis_page(self, hid_text: str, *, chart_limit: int) -> dict:
        """The hypothesis page's data: its detail, its signatures with an example each, its polls,
        its runbooks with a summary, and up to ``chart_limit`` (time, step) points per signature
        for the chart (merged signatures counted under their survivor). Raises LookupError."""
        h = self.hypothesis_detail(hid_text)
        hid = int(h["id"][2:])
        sig_ids = [int(s[2:]) for s in h["signature_ids"]]
        with self.db.read() as session:
            signatures = []
            for sid in sig_ids:
                sig = session.get(Signature, sid)
                if sig is not None:
                    signatures.append(self.signature_with_example(session, sig))
            polls = [self.votes.record(session, p) for p in self.votes.polls(session, hypothesis_id=hid)]
            cmap = canonical_map(session)
            wanted = set(sig_ids) | {m for m, c in cmap.items() if c in set(sig_ids)}
            rows: Sequence = []
            if wanted:
                rows = session.execute(
                    select(col(Event.signature_id), col(Event.time), col(Event.step))
                    .where(col(Event.signature_id).in_(sorted(wanted)))
                    .order_by(col(Event.time))
                    .limit(chart_limit)
                ).all()
        points: dict[str, list] = {f"S-{sid}": [] for sid in sig_ids}
        for sid, t, step in rows:
            key = f"S-{cmap.get(sid, sid)}"
            points.setdefault(key, []).append((t if t.tzinfo else t.replace(tzinfo=UTC), step))
        runbooks = []
        for rid in h["runbook_ids"]:
            rb = self.runbooks.runbooks.get(rid)
            if rb is None:
                runbooks.append({"id": rid, "title": rid, "url": None, "summary": ""})
                continue
            try:
                summary = self.runbooks.summary(rid)
            except Exception:  # noqa: BLE001 - a broken runbook file must not break the page
                summary = ""
            runbooks.append({"id": rid, "title": rb.title, "url": self.runbooks.url(rid), "summary": summary})
        return {
            "h": h,
            "signatures": signatures,
            "polls": polls,
            "runbooks": runbooks,
            "points": points,
            "titles": {s["id"]: s["title"] for s in signatures},
            "truncated": len(rows) >= chart_limit,
        }
