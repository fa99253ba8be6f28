"""Decisions people make about hypotheses (merge, split); the analysis obeys them afterwards."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlmodel import col

from incidentbot.db import Database
from incidentbot.models import (
    Decision,
    Event,
    EventAggregate,
    Hypothesis,
    HypothesisLog,
    HypothesisSignature,
    id_of,
    utcnow,
)

__all__ = ["DecisionService"]


class DecisionService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow):
        self.db = db
        self.clock = clock

    def _signatures(self, session, hid: int) -> list[int]:
        return list(
            session.scalars(
                select(col(HypothesisSignature.signature_id)).where(col(HypothesisSignature.hypothesis_id) == hid)
            )
        )

    def merge_hypotheses(self, ids: Sequence[int], *, actor: str) -> int:
        """One cause: the first hypothesis absorbs the others (their signatures stay together)."""
        ids = list(dict.fromkeys(ids))
        if len(ids) < 2:
            raise ValueError("merge needs two different hypotheses")
        now = self.clock()
        with self.db.write() as session:
            found = {h: session.get(Hypothesis, h) for h in ids}
            missing = [f"H-{h}" for h, obj in found.items() if obj is None]
            if missing:
                raise LookupError(f"no such hypothesis: {', '.join(missing)}")
            hyps = [obj for obj in found.values() if obj is not None]
            target = hyps[0]
            tid = id_of(target)
            sigs: set[int] = set()
            for h in hyps:
                sigs.update(self._signatures(session, id_of(h)))
            for h in hyps[1:]:
                h.merged_into = tid
                h.updated_at = now
                session.add(
                    HypothesisLog(
                        hypothesis_id=id_of(h), at=now, kind="merged", actor=actor, text=f"merged into H-{tid}"
                    )
                )
                for link in session.scalars(
                    select(HypothesisSignature).where(col(HypothesisSignature.hypothesis_id) == id_of(h))
                ):
                    if not session.get(HypothesisSignature, (tid, link.signature_id)):
                        session.add(
                            HypothesisSignature(
                                hypothesis_id=tid, signature_id=link.signature_id, event_count=link.event_count
                            )
                        )
                session.execute(delete(HypothesisSignature).where(col(HypothesisSignature.hypothesis_id) == id_of(h)))
                session.execute(update(Event).where(col(Event.hypothesis_id) == id_of(h)).values(hypothesis_id=tid))
                # Aggregates say which hypothesis explains their events too (analysis reads them, not
                # the raw events): they move with the events.
                session.execute(
                    update(EventAggregate)
                    .where(col(EventAggregate.hypothesis_id) == id_of(h))
                    .values(hypothesis_id=tid)
                )
            target.updated_at = now
            session.add(
                HypothesisLog(
                    hypothesis_id=tid,
                    at=now,
                    kind="merged",
                    actor=actor,
                    text="one cause: absorbed " + ", ".join(f"H-{id_of(h)}" for h in hyps[1:]),
                )
            )
            if len(sigs) > 1:
                session.add(Decision(kind="together", signature_ids=sorted(sigs), actor=actor, at=now))
            return tid

    def split_hypothesis(self, hid: int, signature_ids: Sequence[int], *, actor: str) -> None:
        now = self.clock()
        with self.db.write() as session:
            h = session.get(Hypothesis, hid)
            if h is None:
                raise LookupError(f"H-{hid} does not exist")
            current = set(self._signatures(session, hid))
            out = set(signature_ids)
            if not out <= current:
                raise ValueError(f"H-{hid} does not contain {', '.join(f'S-{s}' for s in sorted(out - current))}")
            rest = current - out
            if not rest:
                raise ValueError("splitting out every signature leaves nothing behind; use reject instead")
            # Pairwise: each split-out signature is kept apart from each remaining one.
            for s in sorted(out):
                for r in sorted(rest):
                    session.add(Decision(kind="apart", signature_ids=[s, r], actor=actor, at=now))
            # Retire "together" decisions that bound them.
            for d in session.scalars(
                select(Decision).where(col(Decision.kind) == "together", col(Decision.active).is_(True))
            ):
                if set(d.signature_ids) & out and set(d.signature_ids) & rest:
                    d.active = False
            session.add(
                HypothesisLog(
                    hypothesis_id=hid,
                    at=now,
                    kind="split",
                    actor=actor,
                    text="split out " + ", ".join(f"S-{s}" for s in sorted(out)),
                )
            )

    def log(self, hid: int, kind: str, text: str, *, actor: str | None) -> None:
        with self.db.write() as session:
            session.add(HypothesisLog(hypothesis_id=hid, at=self.clock(), kind=kind, text=text, actor=actor))
