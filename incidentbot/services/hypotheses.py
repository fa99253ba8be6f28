"""Run the pure analysis over stored events and reconcile its proposals with stored hypotheses.

Reconciliation keeps ids stable (a proposal takes over the stored hypothesis whose events it
overlaps most), never undoes what people decided (resolved and rejected hypotheses keep their
status; merges and splits are passed to the analysis as constraints), and logs what changed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time as _time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update
from sqlmodel import col

from incidentbot import analysis
from incidentbot.db import Database
from incidentbot.models import (
    MIXED_GPU,
    Decision,
    Event,
    EventAggregate,
    Hypothesis,
    HypothesisLog,
    HypothesisSignature,
    JobExposure,
    KeyValue,
    Signature,
    WorkClaim,
    id_of,
    table_of,
    utcnow,
)
from incidentbot.services import messages
from incidentbot.services.outbox import queue
from incidentbot.services.signatures import canonical_map
from incidentbot.services.sql import insert_for, rowcount

if TYPE_CHECKING:
    from incidentbot.metrics import Metrics

__all__ = ["ANNOUNCE_CONFIDENCE", "AnalysisBusy", "AnalysisSummary", "HypothesisService", "aggregate_quota"]

log = logging.getLogger(__name__)

MIN_OVERLAP = 0.3
ANNOUNCE_CONFIDENCE = 0.5  # a new hypothesis at least this confident is announced in the channel
# The analysis lease: its holder renews it every HEARTBEAT while it runs, so a holder that died
# (SIGKILL, a lost node) stops renewing and is replaced LEASE later, well within a minute.
LEASE = timedelta(seconds=30)
HEARTBEAT = 5.0  # seconds
MIN_KEPT = 0.8  # share of a stored hypothesis's events a proposal keeps to take over its id when it grew
CHUNK = 500  # aggregate ids per IN (...) of a set-based UPDATE
ID_MARGIN = 10_000  # event ids before the previous run's newest that are re-checked


class AnalysisBusy(Exception):
    """Another analysis holds the lease for longer than the caller would wait."""


@dataclass(slots=True)
class AnalysisSummary:
    events: int = 0  # events the analysed aggregates stand for
    aggregates: int = 0  # aggregate rows analysed (one record each)
    hypotheses: int = 0
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)
    held_rejected: list[int] = field(default_factory=list)  # proposed again, but people rejected them
    seconds: float = 0.0
    last_event_id: int = 0

    def as_dict(self) -> dict:
        return {
            "events": self.events,
            "aggregates": self.aggregates,
            "hypotheses": self.hypotheses,
            "created": [f"H-{i}" for i in self.created],
            "updated": [f"H-{i}" for i in self.updated],
            "retired": [f"H-{i}" for i in self.retired],
            "seconds": round(self.seconds, 3),
        }


class HypothesisService:
    def __init__(
        self,
        db: Database,
        *,
        topology: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        announce_to: str | None = None,
        metrics: Metrics | None = None,
        max_rows: int = 0,
    ):
        self.db = db
        self.topology = dict(topology or {})
        self.clock = clock
        # The channel new hypotheses are announced in (None: not announced); see _announce.
        self.announce_to = announce_to
        self.metrics = metrics
        # At most this many aggregate rows are analysed (0: all); see _aggregate_queries.
        self.max_rows = max_rows

    # -- analysis ------------------------------------------------------------------------

    def load_inputs(
        self, session
    ) -> tuple[
        list[analysis.EventRecord], dict[int, analysis.SignatureInfo], analysis.Constraints, dict[int, int | None]
    ]:
        """One EventRecord per occurrence aggregate (``count`` events each), the whole history.
        ``current`` maps each loaded aggregate id to the hypothesis that explains it now."""
        return self._load(session)[:4]

    def _load(self, session):
        cmap = canonical_map(session)
        a = table_of(EventAggregate).c
        records: list[analysis.EventRecord] = []
        # Where an aggregate's events spanned steps, the last one is exposure (the job got that
        # far on that host), so the analysis sees the steps each (job, host) covered.
        step_ends: list[analysis.EventRecord] = []
        current: dict[int, int | None] = {}
        cols = (
            a.id,
            a.signature_id,
            a.job_id,
            a.first_time,
            a.host,
            a.gpu,
            a.first_rank,
            a.min_step,
            a.cluster,
            a.code_version,
            a.versions,
            a.run,
            a.attempt,
            a.count,
            a.hypothesis_id,
            a.last_time,
            a.max_step,
            a.job_name,
        )
        conn = session.connection()
        ER = analysis.EventRecord
        for q in self._aggregate_queries(session, cols):
            for (
                aid,
                sid,
                job,
                t,
                host,
                gpu,
                rank,
                step,
                cluster,
                code,
                versions,
                run,
                attempt,
                n,
                hid,
                t_last,
                last_step,
                job_name,
            ) in conn.execute(q):
                versions = tuple(sorted((versions or {}).items()))
                records.append(
                    ER(
                        id=aid,
                        signature_id=cmap.get(sid, sid),
                        job_id=job,
                        time=t.timestamp(),
                        host=host,
                        gpu=None if gpu == MIXED_GPU else gpu,
                        rank=rank,
                        step=step,
                        cluster=cluster,
                        code_version=code,
                        versions=versions,
                        count=n,
                        run=run,
                        attempt=attempt,
                        job_name=job_name,
                    )
                )
                current[aid] = hid
                if last_step is not None and last_step != step:
                    step_ends.append(
                        ER(
                            id=-(2**63 + aid),
                            signature_id=-1,
                            job_id=job,
                            time=t_last.timestamp(),
                            host=host,
                            step=last_step,
                            cluster=cluster,
                            code_version=code,
                            versions=versions,
                            run=run,
                            attempt=attempt,
                        )
                    )
        records.sort(key=lambda r: (r.time, r.id))
        sigs = {
            s.id: analysis.SignatureInfo(
                id=s.id,
                title=s.title,
                category=s.category,
                cause_class=s.cause_class,
                details=tuple(sorted((k, str(v)) for k, v in (s.details or {}).items())),
            )
            for s in session.scalars(select(Signature).where(col(Signature.merged_into).is_(None)))
        }
        together: list[frozenset[int]] = []
        apart: list[frozenset[int]] = []
        for d in session.scalars(
            select(Decision)
            .where(col(Decision.active).is_(True), col(Decision.kind).in_(("together", "apart")))
            .order_by(col(Decision.id))
        ):
            ids = frozenset(cmap.get(i, i) for i in d.signature_ids)
            (together if d.kind == "together" else apart).append(ids)
        return records, sigs, analysis.Constraints(together=tuple(together), apart=tuple(apart)), current, step_ends

    def _aggregate_queries(self, session, cols) -> list:
        """The aggregate rows to analyse: all of them, or with ``max_rows`` set, at most that many
        chosen so no signature is dropped: every row of the signatures below a per-signature quota,
        and the newest ``quota`` rows of each larger one (a storm is thinned, a rare signal kept
        whole). The quota is the largest that fits the cap (water-filling)."""
        a = table_of(EventAggregate).c
        if not self.max_rows:
            return [select(*cols)]
        sizes = dict(session.execute(select(a.signature_id, func.count()).group_by(a.signature_id)).all())
        if sum(sizes.values()) <= self.max_rows:
            return [select(*cols)]
        quota = aggregate_quota(sizes, self.max_rows)
        small = [sid for sid, n in sizes.items() if n <= quota]
        large = sorted(sid for sid, n in sizes.items() if n > quota)
        queries = [select(*cols).where(a.signature_id.in_(small[i : i + 500])) for i in range(0, len(small), 500)]
        queries += [
            select(*cols).where(a.signature_id == sid).order_by(a.last_time.desc(), a.id.desc()).limit(quota)
            for sid in large
            if quota > 0
        ]
        return queries

    def load_exposure(self, session) -> list[analysis.EventRecord]:
        """Each progress segment (job, host, versions) as two exposure records: where it started
        and how far it got."""
        out = []
        for x in session.scalars(select(JobExposure).order_by(col(JobExposure.id))):
            versions = tuple(sorted((x.versions or {}).items()))
            for n, (t, step) in enumerate(((x.first_seen, x.first_step), (x.last_seen, x.last_step))):
                out.append(
                    analysis.EventRecord(
                        id=-(2 * x.id + n),
                        signature_id=-1,
                        job_id=x.job_id,
                        time=t.timestamp(),
                        host=x.host or None,
                        step=step,
                        code_version=x.code_version or None,
                        versions=versions,
                    )
                )
        return out

    def analyze(self) -> AnalysisSummary:
        started = _time.perf_counter()
        with self.db.read() as session:
            newest = session.scalar(select(func.max(Event.id))) or 0
            since = int(_kv_get(session, "analysis.last_event_id") or 0)
            records, sigs, constraints, current, step_ends = self._load(session)
            exposure = self.load_exposure(session) + step_ends
        proposals = analysis.analyze(
            records, sigs, topology=self.topology or None, constraints=constraints, exposure=exposure
        )
        summary = self.reconcile(
            proposals,
            current,
            {r.id: r.signature_id for r in records},
            weight={r.id: r.count for r in records},
            since_event_id=since,
        )
        summary.events = sum(r.count for r in records)
        summary.aggregates = len(records)
        summary.last_event_id = newest
        with self.db.write() as session:
            _kv_set(session, "analysis.last_event_id", str(summary.last_event_id))
            _kv_set(session, "analysis.finished_at", self.clock().isoformat())
        summary.seconds = _time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.analysis_seconds.observe(summary.seconds)
        log.info(
            "analysis: %d events in %d aggregates, %d hypotheses (%d new) in %.2fs",
            summary.events,
            summary.aggregates,
            summary.hypotheses,
            len(summary.created),
            summary.seconds,
        )
        return summary

    def analyze_if_due(self, *, worker: str, debounce: float = 10.0) -> bool:
        """One unit of background work: analyse when events arrived since the last run and the
        newest is ``debounce`` seconds old (a storm is analysed once it settles, or every minute)."""
        with self.db.read() as session:
            last_done = int(_kv_get(session, "analysis.last_event_id") or 0)
            newest = session.scalar(select(func.max(Event.id))) or 0
            if newest <= last_done:
                return False
            newest_received = session.scalar(select(col(Event.received_at)).where(col(Event.id) == newest))
            last_finished = _kv_get(session, "analysis.finished_at")
        now = self.clock()
        quiet_for = (now - newest_received).total_seconds() if newest_received else debounce
        since_last = (now - datetime.fromisoformat(last_finished)).total_seconds() if last_finished else 1e9
        # Wait for a storm to settle, but never let results lag more than a minute behind.
        if quiet_for < debounce and since_last < 60:
            return False
        if not self._claim(worker):
            return False
        with self._heartbeat(worker):
            self.analyze()
        return True

    def analyze_exclusive(self, *, worker: str, wait: float = 60.0) -> AnalysisSummary:
        """Analyse now, under the same lease as the background worker, so two runs never
        reconcile against each other's half-written state; waits up to ``wait`` seconds for a
        running analysis to finish, then raises AnalysisBusy."""
        deadline = _time.monotonic() + wait
        while not self._claim(worker):
            if _time.monotonic() > deadline:
                raise AnalysisBusy(f"an analysis has been running for over {wait:.0f} s; try again later")
            _time.sleep(0.1)
        with self._heartbeat(worker):
            return self.analyze()

    def _claim(self, worker: str) -> bool:
        now = self.clock()
        with self.db.write() as session:
            session.execute(
                delete(WorkClaim).where(col(WorkClaim.key) == "analysis", col(WorkClaim.claimed_at) < now - LEASE)
            )
            stmt = (
                insert_for(session, table_of(WorkClaim))
                .values(key="analysis", claimed_at=now, claimed_by=worker)
                .on_conflict_do_nothing()
                .returning(table_of(WorkClaim).c.key)
            )
            return session.execute(stmt).first() is not None

    def _renew(self, worker: str) -> bool:
        """Push the lease's expiry on; False when it is no longer ours (it expired and was taken)."""
        with self.db.write() as session:
            done = session.execute(
                update(WorkClaim)
                .where(col(WorkClaim.key) == "analysis", col(WorkClaim.claimed_by) == worker)
                .values(claimed_at=self.clock())
            )
            return rowcount(done) == 1

    @contextlib.contextmanager
    def _heartbeat(self, worker: str):
        """Hold the claimed lease while the body runs: renew it every HEARTBEAT seconds from a
        thread, release it at the end (a dead process simply stops renewing)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT):
                try:
                    if not self._renew(worker):
                        log.warning("analysis lease of %s was lost (not renewed in time)", worker)
                        return
                except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next one
                    log.warning("analysis lease renewal failed: %s", " ".join(str(exc).split())[:200])

        thread = threading.Thread(target=beat, name="analysis-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self._release(worker)

    def _release(self, worker: str) -> None:
        with self.db.write() as session:
            session.execute(
                delete(WorkClaim).where(col(WorkClaim.key) == "analysis", col(WorkClaim.claimed_by) == worker)
            )

    # -- reconciliation ------------------------------------------------------------------

    def reconcile(
        self,
        proposals: list,
        current: dict[int, int | None],
        sig_of: Mapping[int, int],
        weight: Mapping[int, int] | None = None,
        *,
        since_event_id: int = 0,
    ) -> AnalysisSummary:
        """Store the proposals. ``current``: aggregate id -> its hypothesis now; ``weight``: events
        per aggregate (1 each when absent); ``since_event_id``: the newest event the previous run
        saw (newer events take their aggregate's hypothesis here)."""
        summary = AnalysisSummary(hypotheses=len(proposals))
        weight = weight or {}
        now = self.clock()
        with self.db.write() as session:
            stored: dict[int, Hypothesis] = {
                id_of(h): h for h in session.scalars(select(Hypothesis).where(col(Hypothesis.merged_into).is_(None)))
            }
            merged_to = dict(
                session.execute(
                    select(col(Hypothesis.id), col(Hypothesis.merged_into)).where(
                        col(Hypothesis.merged_into).is_not(None)
                    )
                ).all()
            )
            sizes: Counter = Counter()
            for aid, h in current.items():
                if h is not None:
                    sizes[merged_to.get(h, h)] += weight.get(aid, 1)
            # Pair proposals with stored hypotheses by event overlap (events, not rows), best pairs first.
            pairs = []
            for pi, p in enumerate(proposals):
                overlap: Counter[int] = Counter()
                for eid in p.event_ids:
                    h = current.get(eid)
                    if h is not None:
                        h = merged_to.get(h, h)
                        overlap[h] += weight.get(eid, 1)
                events = sum(weight.get(eid, 1) for eid in p.event_ids)
                for h, n in overlap.items():
                    if h in stored:
                        union = events + sizes.get(h, 0) - n
                        # A hypothesis that grew (most of its events kept, many new ones) is
                        # still the same one: eligible by Jaccard or by how much of it is kept.
                        kept = n / sizes[h] if sizes.get(h) else 0.0
                        pairs.append((n / union if union else 0.0, kept, pi, h))
            pairs.sort(reverse=True)
            chosen: dict[int, int] = {}
            taken: set[int] = set()
            for score, kept, pi, h in pairs:
                if (score >= MIN_OVERLAP or kept >= MIN_KEPT) and pi not in chosen and h not in taken:
                    chosen[pi] = h
                    taken.add(h)
            new_assign: dict[int, int] = {}
            created: list[int] = []
            # A rejected hypothesis keeps its signatures; the same claim proposed again (same kind
            # and cause class over mostly the same signatures) is that rejected one, even once
            # none of its events point at it any more.
            rejected = {
                hid: frozenset(self.signature_ids(session, hid)) for hid, h in stored.items() if h.status == "rejected"
            }
            for pi, p in enumerate(proposals):
                if pi in chosen or not rejected:
                    continue
                sigs = frozenset(p.signature_ids)
                for rid, rsigs in rejected.items():
                    same_claim = stored[rid].kind == p.kind and stored[rid].cause_class == p.cause_class
                    if same_claim and rid not in taken and len(sigs & rsigs) / max(1, len(sigs | rsigs)) >= MIN_OVERLAP:
                        chosen[pi] = rid
                        taken.add(rid)
                        break
            for pi, p in enumerate(proposals):
                hid = chosen.get(pi)
                if hid is not None and stored[hid].status == "rejected":
                    # People said this is not the cause: their record stays as they judged it, the
                    # same grouping is not proposed again under a new id, and its events are left
                    # unexplained rather than credited to a rejected cause.
                    summary.held_rejected.append(hid)
                    continue
                if hid is None:
                    hyp = Hypothesis(
                        title=p.title[:512],
                        cause_class=p.cause_class,
                        kind=p.kind,
                        scope=p.scope,
                        confidence=round(p.confidence, 4),
                        evidence=list(p.evidence),
                        event_count=sum(weight.get(eid, 1) for eid in p.event_ids),
                        created_at=now,
                        updated_at=now,
                        last_activity_at=now,
                    )
                    session.add(hyp)
                    session.flush()
                    hid = id_of(hyp)
                    created.append(hid)
                    session.add(HypothesisLog(hypothesis_id=hid, at=now, kind="created", text=_describe(p)))
                else:
                    hyp = stored[hid]
                    changed = (
                        hyp.title != p.title[:512]
                        or list(hyp.evidence) != list(p.evidence)
                        or hyp.scope != p.scope
                        or hyp.cause_class != p.cause_class
                    )
                    if changed:
                        session.add(
                            HypothesisLog(
                                hypothesis_id=hid,
                                at=now,
                                kind="evidence",
                                text="evidence changed: " + "; ".join(p.evidence[:3]),
                            )
                        )
                        summary.updated.append(hid)
                    hyp.title, hyp.cause_class, hyp.kind, hyp.scope = p.title[:512], p.cause_class, p.kind, p.scope
                    hyp.confidence, hyp.evidence = round(p.confidence, 4), list(p.evidence)
                    hyp.event_count = sum(weight.get(eid, 1) for eid in p.event_ids)
                    if changed:
                        hyp.updated_at = now
                    if hyp.status == "obsolete":
                        hyp.status = "open"
                for eid in p.event_ids:
                    new_assign[eid] = hid
                # Which signatures, with how many of their events each.
                per_sig = Counter({sid: 0 for sid in p.signature_ids})
                for eid in p.event_ids:
                    if eid in sig_of:
                        per_sig[sig_of[eid]] += weight.get(eid, 1)
                session.execute(delete(HypothesisSignature).where(col(HypothesisSignature.hypothesis_id) == hid))
                session.add_all(
                    [
                        HypothesisSignature(hypothesis_id=hid, signature_id=sid, event_count=n)
                        for sid, n in per_sig.items()
                    ]
                )
            summary.created = created
            # Hypotheses no proposal supports any more: retire open ones, keep human decisions.
            for hid, hyp in stored.items():
                if hid not in taken and hyp.status == "open":
                    hyp.status = "obsolete"
                    hyp.updated_at = now
                    session.add(
                        HypothesisLog(
                            hypothesis_id=hid, at=now, kind="retired", text="no longer supported by the events"
                        )
                    )
                    summary.retired.append(hid)
            gone = set(summary.retired) | {hid for hid, hyp in stored.items() if hyp.status == "rejected"}
            self._move_events(session, current, new_assign, gone=gone, since_event_id=since_event_id)
            self._refresh_activity(session, set(new_assign.values()))
            self._announce(session, created)
        return summary

    def _announce(self, session, created: list[int]) -> None:
        """New hypotheses the analysis is fairly sure of (confidence ≥ ANNOUNCE_CONFIDENCE) are
        posted in the channel, once each, in the transaction that created them."""
        if not self.announce_to:
            return
        for hid in created:
            h = session.get(Hypothesis, hid)
            if h is not None and h.confidence >= ANNOUNCE_CONFIDENCE:
                queue(session, messages.announcement(channel=self.announce_to, hypothesis_id=hid))

    def _move_events(
        self,
        session,
        current: Mapping[int, int | None],
        new_assign: Mapping[int, int],
        *,
        gone: set[int],
        since_event_id: int,
    ) -> None:
        """Write the new hypothesis of each aggregate whose hypothesis changed, and of its events
        (set-based: one UPDATE per hypothesis and chunk of aggregate ids); events newer than the
        previous run take their aggregate's; and nothing keeps the id of a hypothesis that went
        obsolete or was rejected (rows the analysis did not load included)."""
        moved: dict[int | None, list[int]] = defaultdict(list)
        for aid, old in current.items():
            new = new_assign.get(aid)
            if new != old:
                moved[new].append(aid)
        a, e = table_of(EventAggregate), table_of(Event)
        conn = session.connection()
        for hid in sorted(moved, key=lambda h: (h is not None, h or 0)):
            ids = sorted(moved[hid])
            for i in range(0, len(ids), CHUNK):
                chunk = ids[i : i + CHUNK]
                conn.execute(update(a).where(a.c.id.in_(chunk)).values(hypothesis_id=hid))
                conn.execute(update(e).where(e.c.aggregate_id.in_(chunk)).values(hypothesis_id=hid))
        if gone:
            conn.execute(update(a).where(a.c.hypothesis_id.in_(sorted(gone))).values(hypothesis_id=None))
            conn.execute(update(e).where(e.c.hypothesis_id.in_(sorted(gone))).values(hypothesis_id=None))
        # Events that arrived since the previous run, in aggregates whose hypothesis did not change.
        # The margin covers PostgreSQL transactions that commit out of id order.
        newer = max(0, since_event_id - ID_MARGIN)
        own = select(a.c.hypothesis_id).where(a.c.id == e.c.aggregate_id).scalar_subquery()
        conn.execute(
            update(e)
            .where(e.c.id > newer, e.c.aggregate_id.is_not(None))
            .values(hypothesis_id=own)
            .execution_options(synchronize_session=False)
        )

    def _refresh_activity(self, session, hids: set[int]) -> None:
        if not hids:
            return
        a = table_of(EventAggregate).c
        rows = session.execute(
            select(a.hypothesis_id, func.max(a.last_time)).where(a.hypothesis_id.in_(hids)).group_by(a.hypothesis_id)
        ).all()
        for hid, last in rows:
            h = session.get(Hypothesis, hid)
            if h is not None and last is not None:
                h.last_activity_at = last

    # -- reading -------------------------------------------------------------------------

    def signature_ids(self, session, hid: int) -> list[int]:
        return list(
            session.scalars(
                select(col(HypothesisSignature.signature_id))
                .where(col(HypothesisSignature.hypothesis_id) == hid)
                .order_by(col(HypothesisSignature.signature_id))
            )
        )

    def list(self, session, *, statuses: tuple[str, ...] | None = None, limit: int = 500) -> list[Hypothesis]:
        q = select(Hypothesis).where(col(Hypothesis.merged_into).is_(None))
        if statuses:
            q = q.where(col(Hypothesis.status).in_(statuses))
        return list(
            session.scalars(q.order_by(col(Hypothesis.last_activity_at).desc(), col(Hypothesis.id).desc()).limit(limit))
        )

    def count(self, session, *, statuses: tuple[str, ...]) -> int:
        return (
            session.scalar(
                select(func.count())
                .select_from(Hypothesis)
                .where(col(Hypothesis.merged_into).is_(None), col(Hypothesis.status).in_(statuses))
            )
            or 0
        )

    def log(self, session, hid: int, kind: str, text: str, *, actor: str | None = None) -> None:
        session.add(HypothesisLog(hypothesis_id=hid, at=self.clock(), kind=kind, text=text, actor=actor))


def aggregate_quota(sizes: Mapping[int, int], cap: int) -> int:
    """The largest q with sum(min(n, q) for n in sizes) <= cap: signatures with at most q rows are
    kept whole, larger ones are cut to q."""
    counts = sorted(sizes.values())
    used, left = 0, len(counts)
    for n in counts:
        # Giving every remaining signature n rows would cost used + n * left.
        if used + n * left > cap:
            return max(0, (cap - used) // left)
        used += n
        left -= 1
    return counts[-1] if counts else 0


def _describe(p) -> str:
    first = p.evidence[0] if p.evidence else ""
    return f"proposed: {p.title} ({p.cause_class}, confidence {p.confidence:.0%}). {first}"


def _kv_get(session, key: str) -> str | None:
    row = session.get(KeyValue, key)
    return row.value if row else None


def _kv_set(session, key: str, value: str) -> None:
    row = session.get(KeyValue, key)
    if row is None:
        session.add(KeyValue(key=key, value=value))
    else:
        row.value = value
