"""Runbooks for signatures and hypotheses: automatic matches plus what people linked or unlinked."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlmodel import SQLModel, col

from incidentbot.db import Database
from incidentbot.models import Hypothesis, HypothesisSignature, RunbookLink, Signature, table_of, utcnow
from incidentbot.runbooks import Runbook, load_with_errors, match_runbooks, summarize
from incidentbot.services.sql import insert_for

__all__ = ["RunbookService", "RunbookChoice", "cause_first"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunbookChoice:
    runbook: Runbook
    reason: str  # "linked by U123" or the matcher's reason
    manual: bool


def cause_first(signatures: Iterable[Signature], *, cause_class: str | None) -> list[Signature]:
    """A hypothesis's signatures in the order its runbooks are offered (pure): the cause's own
    signatures first (those of the hypothesis's cause class, most frequent first), then the rest
    in the order they first appeared, so a precursor comes before the storm it set off. An Xid 79
    hypothesis offers the Xid runbook before the NCCL-watchdog one, however many watchdog
    timeouts the storm produced."""
    known = cause_class if cause_class and cause_class != "unknown" else None

    def key(s: Signature):
        if known and s.cause_class == known:
            return (0, 0.0, -s.count, s.id or 0)
        return (1, s.first_seen.timestamp() if s.first_seen else 0.0, -s.count, s.id or 0)

    return sorted(signatures, key=key)


class RunbookService:
    def __init__(self, db: Database, directory: Path, *, base_url: str | None = None):
        self.db = db
        self.directory = Path(directory)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.runbooks: dict[str, Runbook] = {}
        self._auto: dict[tuple, list[tuple[str, str]]] = {}
        self._usage: tuple[float, list[dict]] | None = None
        self.reload()

    def reload(self) -> None:
        if not self.directory.is_dir():
            log.warning("runbooks directory %s does not exist; no runbooks will be suggested", self.directory)
            self.runbooks = {}
            return
        runbooks, errors = load_with_errors(self.directory)
        for err in errors:
            log.warning("runbook skipped: %s", err)
        self.runbooks = {rb.id: rb for rb in runbooks}
        self._auto.clear()

    def url(self, runbook_id: str) -> str | None:
        if not self.base_url or runbook_id not in self.runbooks:
            return None
        return f"{self.base_url}/{self.runbooks[runbook_id].path.name}"

    def auto_for_signature(self, sig: Signature) -> list[tuple[str, str]]:
        """(runbook id, reason) pairs the matcher proposes for a signature, best first (cached by
        what the matcher reads, so the cache can never answer for another signature)."""
        details = sig.details or {}
        xid = details.get("xid")
        codes = (int(xid),) if isinstance(xid, (int, str)) and str(xid).isdigit() else ()
        key = (sig.category, sig.cause_class, sig.template, codes, sig.example or "")
        if key not in self._auto:
            matches = match_runbooks(
                self.runbooks.values(),
                category=sig.category,
                cause_class=sig.cause_class,
                template=sig.template,
                xid_codes=codes,
                text=sig.example or "",
            )
            if len(self._auto) > 20_000:
                self._auto.clear()
            self._auto[key] = [(m.id, m.reason) for m in matches[:3]]
        return self._auto[key]

    def _links(self, session, target: str) -> dict[str, RunbookLink]:
        return {
            link.runbook_id: link
            for link in session.scalars(select(RunbookLink).where(col(RunbookLink.target) == target))
        }

    def for_signature(self, session, sig: Signature) -> list[RunbookChoice]:
        return self._choose(self._links(session, f"S-{sig.id}"), self.auto_for_signature(sig))

    def for_hypothesis(self, session, hid: int, signatures: Iterable[Signature]) -> list[RunbookChoice]:
        auto: list[tuple[str, str]] = []
        seen = set()
        h = session.get(Hypothesis, hid)
        # The hypothesis inherits its signatures' matches, its cause's signatures first.
        for sig in cause_first(signatures, cause_class=h.cause_class if h is not None else None):
            for rid, reason in self.auto_for_signature(sig):
                if rid not in seen:
                    seen.add(rid)
                    auto.append((rid, f"{reason} (via S-{sig.id})"))
        return self._choose(self._links(session, f"H-{hid}"), auto)

    def _choose(self, links: dict[str, RunbookLink], auto: list[tuple[str, str]]) -> list[RunbookChoice]:
        out: list[RunbookChoice] = []
        for rid, link in sorted(links.items(), key=lambda kv: kv[1].at):
            if link.linked and rid in self.runbooks:
                out.append(RunbookChoice(self.runbooks[rid], f"linked by {link.actor or 'a person'}", True))
        for rid, reason in auto:
            if rid in self.runbooks and rid not in links:
                out.append(RunbookChoice(self.runbooks[rid], reason, False))
        return out

    def link(self, target: str, runbook_id: str, *, actor: str | None, linked: bool = True) -> None:
        if runbook_id not in self.runbooks:
            raise LookupError(f"no runbook {runbook_id!r}; try `runbooks <words>` to search")
        prefix, _, number = target.partition("-")
        with self.db.write() as session:
            models: dict[str, type[SQLModel]] = {"H": Hypothesis, "S": Signature}
            model = models.get(prefix)
            if model is None or not number.isdigit() or session.get(model, int(number)) is None:
                raise LookupError(f"{target} does not exist")
            stmt = insert_for(session, table_of(RunbookLink)).values(
                target=target, runbook_id=runbook_id, linked=linked, actor=actor, at=utcnow()
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["target", "runbook_id"], set_={"linked": linked, "actor": actor, "at": utcnow()}
            )
            session.execute(stmt)

    def usage(self, session, *, max_age: float = 0.0) -> list[dict]:
        """Each runbook with the incidents (hypotheses) it served and their time to resolution,
        so a runbook that is often matched but rarely leads to a fix stands out. ``max_age``:
        seconds a previous answer may be reused (the slash command's search uses 30)."""
        now = time.monotonic()
        if max_age and self._usage is not None and now - self._usage[0] < max_age:
            return self._usage[1]
        out = self._compute_usage(session)
        self._usage = (now, out)
        return out

    def _compute_usage(self, session) -> list[dict]:
        served: dict[str, list[Hypothesis]] = {rid: [] for rid in self.runbooks}
        hyps = list(session.scalars(select(Hypothesis).where(col(Hypothesis.merged_into).is_(None))))
        links: dict[int, list[int]] = {}
        # A hypothesis is served by the runbook of its biggest signatures: the top few suffice.
        for hid, sid in session.execute(
            select(col(HypothesisSignature.hypothesis_id), col(HypothesisSignature.signature_id)).order_by(
                col(HypothesisSignature.hypothesis_id), col(HypothesisSignature.event_count).desc()
            )
        ):
            if len(links.setdefault(hid, [])) < 5:
                links[hid].append(sid)
        needed = {sid for v in links.values() for sid in v}
        sigs = (
            {s.id: s for s in session.scalars(select(Signature).where(col(Signature.id).in_(needed)))} if needed else {}
        )
        all_links: dict[str, dict[str, RunbookLink]] = {}
        for link in session.scalars(select(RunbookLink)):
            all_links.setdefault(link.target, {})[link.runbook_id] = link
        for h in hyps:
            hsigs = cause_first([sigs[s] for s in links.get(h.id, []) if s in sigs], cause_class=h.cause_class)
            auto, seen = [], set()
            for sig in hsigs:
                for rid, reason in self.auto_for_signature(sig):
                    if rid not in seen:
                        seen.add(rid)
                        auto.append((rid, reason))
            choices = self._choose(all_links.get(f"H-{h.id}", {}), auto)
            if choices:
                served[choices[0].runbook.id].append(h)
        out = []
        for rid, rb in sorted(self.runbooks.items()):
            done = [(h, h.resolved_at) for h in served[rid] if h.status == "resolved" and h.resolved_at]
            hours = [(at - h.created_at).total_seconds() / 3600 for h, at in done]
            out.append(
                {
                    "id": rid,
                    "title": rb.title,
                    "severity": rb.severity,
                    "owner": rb.owner,
                    "last_reviewed": rb.last_reviewed.isoformat(),
                    "url": self.url(rid),
                    "incidents": [f"H-{h.id}" for h in served[rid]],
                    "resolved": len(done),
                    "mean_hours_to_resolution": round(sum(hours) / len(hours), 2) if hours else None,
                }
            )
        return out

    def search(self, query: str, *, limit: int = 8) -> list[Runbook]:
        # A word matches at the start of a word ("mem" finds "memory"; "oom" does not find "room").
        words = [re.compile(r"(?<![a-z0-9])" + re.escape(w.lower())) for w in query.split() if w]
        scored = []
        for rb in self.runbooks.values():
            hay = " ".join(
                [rb.id, rb.title, " ".join(rb.match.categories), " ".join(map(str, rb.match.xid)), rb.body]
            ).lower()
            title = (rb.id + " " + rb.title).lower()
            score = sum(3 if w.search(title) else 1 if w.search(hay) else -100 for w in words) if words else 1
            if score > 0:
                scored.append((-score, rb.id, rb))
        return [rb for _, _, rb in sorted(scored)[:limit]]

    def summary(self, runbook_id: str, *, max_chars: int = 1200) -> str:
        return summarize(self.runbooks[runbook_id], max_chars=max_chars)
