"""Store events durably, exactly once, and keep signature counters in the same transaction."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import struct
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError, OperationalError

from incidentbot import audit, signatures
from incidentbot.analysis.lineage import launcher_job_name
from incidentbot.db import Database
from incidentbot.ingest.schema import EventIn
from incidentbot.models import (
    MIXED_GPU,
    Event,
    EventAggregate,
    JobExposure,
    Signature,
    SignatureMember,
    table_of,
    utcnow,
)
from incidentbot.services import hll
from incidentbot.services.alert_quota import NewSignaturePolicy, queue_new_signature_alerts
from incidentbot.services.sql import (
    driver_params,
    insert_counted,
    insert_for,
    insert_new,
    least_greatest,
    sql_time,
)
from incidentbot.services.templates import Placement, TemplateStore

__all__ = ["IngestResult", "IngestService", "aggregate_key", "run_lineage", "DEFAULT_BUCKET_SECONDS"]

log = logging.getLogger(__name__)

_EVENT = table_of(Event)
_SIG = table_of(Signature)
_MEMBER = table_of(SignatureMember)
_EXPOSURE = table_of(JobExposure)
_AGG = table_of(EventAggregate)
DEFAULT_BUCKET_SECONDS = 30
PROGRESS = "progress"  # the event kind of a job's progress report
RANKS_EXACT = 1000
_NO_VERSIONS: dict[str, str] = {}  # shared, never written: what an event without versions stores
_EVENT_COLUMNS = (
    "event_id",
    "job_id",
    "message",
    "time",
    "received_at",
    "source",
    "cluster",
    "host",
    "gpu",
    "rank",
    "step",
    "code_version",
    "versions",
    "kind",
    "attributes",
    "signature_id",
    "sent_time",
    "run",
    "attempt",
    "aggregate_id",
)
_MEMBER_COLUMNS = ("signature_id", "dim", "value")


def _counters_sql(dialect: str) -> str:
    """One UPDATE per touched signature, sent as one executemany. Jobs, hosts and ranks grow by
    what this transaction's member inserts added (exact under concurrent writers); the rank
    fields change only when given."""
    least, greatest = least_greatest(dialect)
    return (
        f"UPDATE {_SIG.name} SET count = count + :n, "
        f"first_seen = {least}(first_seen, :first), last_seen = {greatest}(last_seen, :last), "
        "job_count = job_count + :jobs, host_count = host_count + :hosts, "
        "rank_count = coalesce(:rank_count, rank_count), rank_sketch = coalesce(:rank_sketch, rank_sketch) "
        "WHERE id = :id"
    )


_BLAKE2B_8 = hashlib.blake2b(digest_size=8)
_U64 = struct.Struct(">Q")  # an 8-byte digest as a big-endian unsigned integer


def aggregate_key(
    signature_id: int,
    bucket_start: int,
    job_id: str,
    host: str | None,
    cluster: str | None,
    code_version: str | None,
    versions: tuple,
    run: str | None,
    attempt: int | None,
) -> int:
    """The id of an occurrence aggregate: a 63-bit hash of its key (positive, never 0). Two keys
    share an id with probability about n²/2⁶⁴ (n aggregates: 5e-6 at ten million); they would then
    share one row's counts, which the analysis tolerates."""
    key = repr((signature_id, bucket_start, job_id, host, cluster, code_version, versions, run, attempt)).encode()
    h = _BLAKE2B_8.copy()  # the same as blake2b(key, digest_size=8); copying is cheaper than a new one
    h.update(key)
    return (_U64.unpack(h.digest())[0] >> 1) or 1


def run_lineage(ev: EventIn) -> tuple[str | None, int | None]:
    """The run and attempt an event belongs to: the top-level fields, else the attributes
    launchers and reporters use (``run_id``; ``attempt`` or torchelastic's ``restart_count``)."""
    run, attempt = ev.run, ev.attempt
    attrs = ev.attributes
    if attrs and (run is None or attempt is None):
        if run is None:
            value = attrs.get("run_id")
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                run = str(value)[:256]
        if attempt is None:
            for name in ("attempt", "restart_count"):
                value = attrs.get(name)
                if isinstance(value, str) and value.isdigit() and len(value) < 19:
                    value = int(value)
                if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
                    attempt = value
                    break
    return run, attempt


@functools.cache
def _aggregate_upsert_sql(dialect: str) -> str:
    """INSERT … ON CONFLICT (id) DO UPDATE of one aggregate row; SET expressions read the stored
    row (``a``) as it was, so first_rank follows the earlier first_time."""
    least, greatest = least_greatest(dialect)
    same = "IS" if dialect == "sqlite" else "IS NOT DISTINCT FROM"
    cols = (
        "id",
        "signature_id",
        "bucket_start",
        "job_id",
        "host",
        "cluster",
        "code_version",
        "versions",
        "run",
        "attempt",
        "job_name",
        "count",
        "first_time",
        "last_time",
        "first_rank",
        "gpu",
        "min_step",
        "max_step",
    )
    marks = ", ".join(("?" if dialect == "sqlite" else "%s") for _ in cols)
    t = _AGG.name
    return (
        f"INSERT INTO {t} AS a ({', '.join(cols)}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET "
        "count = a.count + excluded.count, "
        "first_rank = CASE WHEN excluded.first_time < a.first_time THEN excluded.first_rank ELSE a.first_rank END, "
        f"first_time = {least}(a.first_time, excluded.first_time), last_time = {greatest}(a.last_time, excluded.last_time), "
        f"gpu = CASE WHEN a.gpu {same} excluded.gpu THEN a.gpu ELSE '{MIXED_GPU}' END, "
        f"min_step = {least}(coalesce(a.min_step, excluded.min_step), coalesce(excluded.min_step, a.min_step)), "
        f"max_step = {greatest}(coalesce(a.max_step, excluded.max_step), coalesce(excluded.max_step, a.max_step)), "
        "job_name = coalesce(a.job_name, excluded.job_name)"
    )


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    progress: int = 0  # progress reports among the accepted (kept as job exposure, not as events)
    new_signature_ids: list[int] = field(default_factory=list)
    rolled_up: int = 0  # new signatures counted in a roll-up message instead of an alert of their own
    time_adjusted: int = 0  # events whose time was too far from receive time, stored at receive time
    # signature id → events accepted for it in this batch (for regression checks and metrics)
    per_signature: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Learned:
    ids: dict[str, int] = field(default_factory=dict)
    members: list = field(default_factory=list)
    placement: Placement | None = None


def _member_value(text: str) -> str:
    return text if len(text) <= 200 else text[:150] + "#" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class IngestService:
    """Turns validated events into rows. One instance per process; it caches fingerprint → id,
    which is safe because signature rows are never deleted or re-keyed."""

    # Fingerprint -> id entries kept; past this the map starts again (a look-up of the missing
    # keys is one query per batch), so a flood of unique texts cannot grow it without bound.
    SIG_CACHE_MAX = 100_000

    def __init__(
        self,
        db: Database,
        *,
        channel: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        alert_policy: NewSignaturePolicy = NewSignaturePolicy(),
        max_time_skew: timedelta = timedelta(days=1),
        max_event_age: timedelta = timedelta(days=3650),
        bucket_seconds: int = DEFAULT_BUCKET_SECONDS,
        templates: TemplateStore | None = None,
        on_regression: Callable[[Any, list[dict]], Any] | None = None,
    ):
        self.db = db
        # Called in the ingest transaction with the stored rows, so a resolved failure that comes
        # back reopens its hypothesis in the same commit (ResolutionService.check_regressions).
        self.on_regression = on_regression
        # The template engine's families live in the database; this holds the process's memo.
        self.templates = templates if templates is not None else TemplateStore()
        self.channel = channel
        self.clock = clock
        self.alert_policy = alert_policy
        self.max_time_skew = max_time_skew
        self.max_event_age = max_event_age
        self.bucket_seconds = bucket_seconds
        self._sig_ids: dict[str, int] = {}
        self._older_rules: bool | None = None  # whether signatures of older grouping rules exist
        self._members: set[tuple[int, str, str]] = set()

    def ingest(self, events: Sequence[EventIn], *, source: str = "api") -> IngestResult:
        now = self.clock()
        rows: list[dict] = []
        fps: dict[str, signatures.Fingerprint] = {}
        seen: set[str] = set()
        result = IngestResult()
        progress = [ev for ev in events if ev.kind == PROGRESS]
        if progress:
            # Progress reports are not failures: they widen the job's exposure (hosts, versions,
            # steps) and are kept as segments, not as events. Widening is idempotent, so they
            # commit on their own: a resent batch (after a failure of the events' transaction)
            # changes nothing twice.
            events = [ev for ev in events if ev.kind != PROGRESS]
            with self.db.write() as session:
                self._record_exposure(session, progress, now)
            result.accepted += len(progress)
            result.progress = len(progress)
        for ev in events:
            event_id = ev.event_id or f"ev-{uuid.uuid4().hex}"
            if event_id in seen:
                result.duplicates += 1
                continue
            seen.add(event_id)
            fp = signatures.fingerprint(ev.message)
            fps.setdefault(fp.key, fp)
            t, sent = ev.time or now, None
            if ev.time is not None and (ev.time - now > self.max_time_skew or now - ev.time > self.max_event_age):
                # Kept, not refused: the failure is real even when the node's clock is not.
                t, sent = now, ev.time
                result.time_adjusted += 1
            run, run_attempt = run_lineage(ev)
            rows.append(
                {
                    "event_id": event_id,
                    "job_id": ev.job_id,
                    "message": ev.message,
                    "time": t,
                    "sent_time": sent,
                    "received_at": now,
                    "source": source,
                    "cluster": ev.cluster,
                    "host": ev.host,
                    "gpu": ev.gpu,
                    "rank": ev.rank,
                    "step": ev.step,
                    "code_version": ev.code_version,
                    "versions": ev.versions,
                    "kind": ev.kind,
                    "attributes": ev.attributes,
                    "signature_id": None,
                    "_fp": fp.key,
                    "run": run,
                    "attempt": run_attempt,
                    "job_name": launcher_job_name(ev.attributes),
                    "aggregate_id": None,
                }
            )
        if not rows:
            return result
        # One global lock order (signature keys, event ids, aggregate rows, members, signature rows,
        # each sorted) keeps concurrent batches on PostgreSQL from deadlocking; a deadlock or serialisation
        # failure that happens anyway rolls back whole and is retried.
        rows.sort(key=lambda r: r["event_id"])
        for attempt in range(4):
            try:
                return self._store(rows, fps, result)
            except (OperationalError, DBAPIError, psycopg.errors.OperationalError) as exc:
                state = getattr(getattr(exc, "orig", exc), "sqlstate", None)
                if attempt == 3 or state not in ("40P01", "40001"):
                    raise
                log.warning("ingest transaction retried after %s", state)
                result = IngestResult(
                    accepted=result.progress,
                    duplicates=result.duplicates,
                    progress=result.progress,
                    time_adjusted=result.time_adjusted,
                )
        return result

    def _store(self, rows: list[dict], fps: dict, result: IngestResult) -> IngestResult:
        # Caches learn from a transaction only once it has committed (and requests run on
        # several threads at once, so what a transaction learns stays local until then).
        learned = _Learned()
        with self.db.write() as session:
            # Duplicates are set aside before any signature is made: a resent id whose text
            # differs (an Alertmanager resend, a retried batch) must not leave an empty signature.
            stored = self._stored_event_ids(session, [r["event_id"] for r in rows])
            if stored:
                result.duplicates += sum(1 for r in rows if r["event_id"] in stored)
                rows = [r for r in rows if r["event_id"] not in stored]
                if not rows:
                    return result
                live = {r["_fp"] for r in rows}
                fps = {k: v for k, v in fps.items() if k in live}
            # The template engine turns each text's own tokens into the signature of the template
            # it belongs to (fps are in arrival order, the order the engine learns in).
            placement = learned.placement = self.templates.place(session, fps.values())
            sig_fps = self._signature_fingerprints(fps, placement, rows)
            new_ids = self._ensure_signatures(session, sig_fps, rows, learned)
            new_ids -= self._carry_over_rule_changes(session, new_ids)
            # Generalised templates: what collapsed is merged (recorded, undoable) and alerts
            # already posted are edited; a signature absorbed in its own batch is not announced.
            new_ids -= self.templates.apply_merges(session, placement, new_ids=new_ids)
            # Look-ups, not a merged copy: copying the whole map per batch made a batch's cost
            # grow with every signature ever seen.
            known, fresh = self._sig_ids, learned.ids
            for row in rows:
                k = row["_sig"]
                row["signature_id"] = fresh[k] if k in fresh else known[k]
            self._assign_aggregates(rows)
            inserted = {r[0] for r in insert_new(session, _EVENT, rows, key="event_id", columns=_EVENT_COLUMNS)}
            result.accepted += len(inserted)
            result.duplicates += len(rows) - len(inserted)
            if len(inserted) < len(rows):
                rows = [r for r in rows if r["event_id"] in inserted]
                # A concurrent writer stored one of these ids after the look-up above: a
                # signature made only for such rows holds no event, so it is not kept.
                empty = new_ids - {r["signature_id"] for r in rows}
                if empty:
                    session.execute(_SIG.delete().where(_SIG.c.id.in_(sorted(empty))))
                    new_ids -= empty
                    learned.ids = {k: v for k, v in learned.ids.items() if v not in empty}
            if rows:
                self._upsert_aggregates(session, rows)
                self._update_counters(session, rows, result, learned)
            # A signature whose every event was a duplicate (a resend racing its first copy) is
            # not news: no alert for a signature that holds nothing.
            first_job: dict[int, str] = {}
            for r in rows:
                if r["signature_id"] in new_ids:
                    first_job.setdefault(r["signature_id"], r["job_id"])
            result.new_signature_ids = sorted(first_job)
            if self.channel and first_job:
                queued = queue_new_signature_alerts(
                    session,
                    new=sorted(first_job.items()),
                    channel=self.channel,
                    policy=self.alert_policy,
                    now=self.clock(),
                )
                result.rolled_up = len(queued.rolled)
            if self.on_regression and result.per_signature:
                self.on_regression(session, rows)
        if len(self._sig_ids) + len(learned.ids) > self.SIG_CACHE_MAX:
            self._sig_ids.clear()
        self._sig_ids.update(learned.ids)
        if learned.placement is not None:
            self.templates.remember(learned.placement)
        if len(self._members) > 500_000:
            self._members.clear()
        self._members.update(learned.members)
        return result

    def _stored_event_ids(self, session, event_ids: list[str]) -> set[str]:
        col = _EVENT.c.event_id
        out: set[str] = set()
        for i in range(0, len(event_ids), 900):  # under SQLite's bound-parameter limit
            out.update(session.execute(select(col).where(col.in_(event_ids[i : i + 900]))).scalars())
        return out

    # -- occurrence aggregates ------------------------------------------------------------

    def _assign_aggregates(self, rows: list[dict]) -> None:
        """Give each row the id of its occurrence aggregate (a hash of the aggregate's key, so no
        round trip is needed before the events are inserted)."""
        width = self.bucket_seconds
        memo: dict[tuple, int] = {}
        canonical: dict[tuple, tuple] = {}  # versions as given -> sorted (a batch's version maps repeat)
        for r in rows:
            versions = r["versions"]
            # Grouped by the versions as given (sorting per row costs more than the rest of the
            # key); the id sorts them, so another key order still lands in the same row.
            given = tuple(versions.items()) if versions else ()
            group = (
                r["signature_id"],
                int(r["time"].timestamp() // width) * width,
                r["job_id"],
                r["host"],
                r["cluster"],
                r["code_version"],
                given,
                r["run"],
                r["attempt"],
            )
            agg = memo.get(group)
            if agg is None:
                ordered = canonical.get(given)
                if ordered is None:
                    ordered = canonical[given] = tuple(sorted(given))
                agg = memo[group] = aggregate_key(*group[:6], ordered, *group[7:])
            r["aggregate_id"] = agg

    def _upsert_aggregates(self, session, rows: list[dict]) -> None:
        """Count the inserted rows into their aggregates: one ``INSERT … ON CONFLICT DO UPDATE``
        sent as one executemany, rows in id order (the lock order: after event ids, before members).

        Built for batches where most aggregates get one row (events of many jobs and hosts): such
        an aggregate is written from its row directly, and only aggregates with several rows keep
        a running summary. Few objects survive the loop, so the collector has less to walk."""
        first: dict[int, dict] = {}  # aggregate id -> its first row
        # aggregate id -> count, first_time, last_time, first_rank, gpu, min_step, max_step
        more: dict[int, list] = {}
        for r in rows:
            agg = r["aggregate_id"]
            r0 = first.setdefault(agg, r)
            if r0 is r:
                continue
            g = more.get(agg)
            if g is None:
                t0 = r0["time"]
                g = more[agg] = [1, t0, t0, r0["rank"], r0["gpu"], r0["step"], r0["step"]]
            t = r["time"]
            g[0] += 1
            if t < g[1]:
                g[1], g[3] = t, r["rank"]
            elif t > g[2]:
                g[2] = t
            if g[4] != r["gpu"]:
                g[4] = MIXED_GPU
            step = r["step"]
            if step is not None:
                if g[5] is None or step < g[5]:
                    g[5] = step
                if g[6] is None or step > g[6]:
                    g[6] = step
        dialect = session.get_bind().dialect.name
        to_time, to_json = driver_params(dialect)
        width = self.bucket_seconds
        # A batch's times and version maps repeat (its receive time, a job's versions): each is
        # converted once. Times by value; version maps by identity, which is safe while the rows
        # hold them (to the end of this call).
        times: dict[datetime, Any] = {}
        maps: dict[int, Any] = {}
        params = []
        for agg in sorted(first):
            r = first[agg]
            g = more.get(agg)
            if g is None:
                n, lo_t, hi_t, rank, gpu, lo, hi = 1, r["time"], r["time"], r["rank"], r["gpu"], r["step"], r["step"]
            else:
                n, lo_t, hi_t, rank, gpu, lo, hi = g
            versions = r["versions"] or _NO_VERSIONS
            v = maps.get(id(versions))
            if v is None:
                v = maps[id(versions)] = to_json(versions)
            t0 = times.get(lo_t)
            if t0 is None:
                t0 = times[lo_t] = to_time(lo_t)
            t1 = times.get(hi_t)
            if t1 is None:
                t1 = times[hi_t] = to_time(hi_t)
            params.append(
                (
                    agg,
                    r["signature_id"],
                    int(lo_t.timestamp() // width) * width,
                    r["job_id"],
                    r["host"],
                    r["cluster"],
                    r["code_version"],
                    v,
                    r["run"],
                    r["attempt"],
                    r["job_name"],
                    n,
                    t0,
                    t1,
                    rank,
                    gpu,
                    lo,
                    hi,
                )
            )
        if not params:
            return
        cur = session.connection().connection.driver_connection.cursor()
        try:
            # psycopg pipelines an executemany: on PostgreSQL this beat one INSERT … SELECT over
            # unnest(arrays) (its arrays are dumped in Python, and the server works alone).
            cur.executemany(_aggregate_upsert_sql(dialect), params)
        finally:
            cur.close()

    def _record_exposure(self, session, progress: Sequence[EventIn], now: datetime) -> None:
        """Widen each (job, host, code version, versions) segment to the steps and times reported."""
        segments: dict[tuple[str, str, str, str], list] = {}
        for ev in progress:
            versions = dict(ev.versions)
            key = (
                ev.job_id,
                ev.host or "",
                ev.code_version or "",
                hashlib.blake2b(json.dumps(sorted(versions.items())).encode(), digest_size=16).hexdigest(),
            )
            t = ev.time or now
            seg = segments.get(key)
            if seg is None:
                segments[key] = [versions, ev.step, ev.step, t, t]
                continue
            if ev.step is not None:
                seg[1] = ev.step if seg[1] is None else min(seg[1], ev.step)
                seg[2] = ev.step if seg[2] is None else max(seg[2], ev.step)
            seg[3], seg[4] = min(seg[3], t), max(seg[4], t)
        stmt = insert_for(session, _EXPOSURE)
        x, new = _EXPOSURE.c, stmt.excluded
        least, greatest = (getattr(func, name) for name in least_greatest(session.get_bind().dialect.name))
        stmt = stmt.on_conflict_do_update(
            index_elements=["job_id", "host", "code_version", "versions_key"],
            set_={
                # NULL steps (reports without a step) never narrow a segment.
                "first_step": least(
                    func.coalesce(x.first_step, new.first_step), func.coalesce(new.first_step, x.first_step)
                ),
                "last_step": greatest(
                    func.coalesce(x.last_step, new.last_step), func.coalesce(new.last_step, x.last_step)
                ),
                "first_seen": least(x.first_seen, new.first_seen),
                "last_seen": greatest(x.last_seen, new.last_seen),
            },
        )
        for key in sorted(segments):  # one lock order for concurrent writers
            versions, first, last, t0, t1 = segments[key]
            session.execute(
                stmt,
                {
                    "job_id": key[0],
                    "host": key[1],
                    "code_version": key[2],
                    "versions_key": key[3],
                    "versions": versions,
                    "first_step": first,
                    "last_step": last,
                    "first_seen": t0,
                    "last_seen": t1,
                },
            )

    def _ensure_signatures(
        self, session, fps: dict[str, signatures.Fingerprint], rows: list[dict], learned: _Learned
    ) -> set[int]:
        missing = sorted(k for k in fps if k not in self._sig_ids)
        if not missing:
            return set()
        first_time: dict[str, datetime] = {}
        example: dict[str, str] = {}
        for r in rows:
            k = r["_sig"]
            if k in fps and (k not in first_time or r["time"] < first_time[k]):
                first_time[k] = r["time"]
                example.setdefault(k, r["message"][:4000])
        values = []
        for k in missing:
            fp = fps[k]
            values.append(
                {
                    "fingerprint": k,
                    "rules_version": signatures.RULES_VERSION,
                    "title": fp.title[:512],
                    "category": fp.category,
                    "cause_class": fp.cause_class,
                    "parser": fp.parser,
                    "template": fp.template,
                    "details": dict(fp.details),
                    "example": example.get(k, ""),
                    "count": 0,
                    "first_seen": first_time[k],
                    "last_seen": first_time[k],
                    "created_at": self.clock(),
                }
            )
        stmt = insert_for(session, _SIG).on_conflict_do_nothing(index_elements=["fingerprint"]).returning(_SIG.c.id)
        new_ids = {r[0] for r in session.execute(stmt, values)}
        for sid, key in session.execute(select(_SIG.c.id, _SIG.c.fingerprint).where(_SIG.c.fingerprint.in_(missing))):
            learned.ids[key] = sid
            if sid in new_ids:
                audit.note(session, f"S-{sid} new signature ({fps[key].category}): {fps[key].title[:200]}")
        return new_ids

    @staticmethod
    def _signature_fingerprints(fps: dict, placement: Placement, rows: list[dict]) -> dict:
        """Signature fingerprint -> what its signature row is made from; sets each row's ``_sig``."""
        out: dict[str, signatures.Fingerprint] = {}
        for k, fp in fps.items():
            sig = placement.signature_of[k]
            if sig in out:
                continue
            if sig == fp.key:
                out[sig] = fp
                continue
            template = placement.template_of.get(sig)
            if fp.parser == "template" and template is not None:
                text = template.replace(" \n ", "\n")
                out[sig] = replace(fp, key=sig, template=text, title=signatures.title_of_template(text))
            else:
                out[sig] = replace(fp, key=sig)
        for r in rows:
            r["_sig"] = placement.signature_of[r["_fp"]]
        return out

    def _carry_over_rule_changes(self, session, new_ids: set[int]) -> set[int]:
        """A signature made by new grouping rules whose template and category match one made by
        older rules is merged into the old one, so history, merges and alerts carry over a rules
        upgrade (Sentry keeps old groups alive across grouping-config changes for the same reason)."""
        if not new_ids:
            return set()
        c = _SIG.c
        if self._older_rules is None:
            # New signatures are always made by the current rules, so once a process has seen
            # none of older rules it never will: the look-up below is skipped for good (it was
            # a scan per new signature, the cost that grew with a flood).
            self._older_rules = (
                session.scalar(select(c.id).where(c.rules_version != signatures.RULES_VERSION).limit(1)) is not None
            )
        if not self._older_rules:
            return set()
        fresh = session.execute(select(c.id, c.category, c.template).where(c.id.in_(new_ids))).all()
        templates = sorted({t for _, _, t in fresh})
        old_by_shape: dict[tuple[str, str], int] = {}
        for i in range(0, len(templates), 500):  # one query per 500 templates, not one per signature
            for oid, category, template in session.execute(
                select(c.id, c.category, c.template)
                .where(
                    c.template.in_(templates[i : i + 500]),
                    c.rules_version != signatures.RULES_VERSION,
                    c.merged_into.is_(None),
                )
                .order_by(c.id)
            ):
                old_by_shape.setdefault((category, template), oid)
        carried = set()
        for sid, category, template in fresh:
            old = old_by_shape.get((category, template))
            if old is not None and old != sid:
                session.execute(update(_SIG).where(c.id == sid).values(merged_into=old))
                carried.add(sid)
        return carried

    def _update_counters(self, session, rows: list[dict], result: IngestResult, learned: _Learned) -> None:
        agg: dict[int, list] = {}
        members: set[tuple[int, str, str]] = set()
        ranks: dict[int, set[str]] = defaultdict(set)
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
                ranks[sid].add(f"{r['job_id']}#{r['rank']}")
        # Jobs, hosts and ranks are counted exactly (a row each; ranks up to RANKS_EXACT, then a
        # sketch); members this process has stored before are skipped without a query.
        new = sorted(m for m in members if m not in self._members)
        added = insert_counted(session, _MEMBER, _MEMBER_COLUMNS, new, count_by=2)
        learned.members = new
        rank_fields = self._count_ranks(session, ranks) if ranks else {}
        params = []
        # Ordered by id so two replicas updating the same signatures lock rows in one order.
        for sid in sorted(agg):
            n, first, last = agg[sid]
            result.per_signature[sid] = n
            rank_count, sketch = rank_fields.get(sid, (None, None))
            params.append(
                {
                    "id": sid,
                    "n": n,
                    "first": sql_time(session, first),
                    "last": sql_time(session, last),
                    "jobs": added[(sid, "job")],
                    "hosts": added[(sid, "host")],
                    "rank_count": rank_count,
                    "rank_sketch": sketch,
                }
            )
        session.execute(text(_counters_sql(session.get_bind().dialect.name)), params)

    def _count_ranks(self, session, ranks: dict[int, set[str]]) -> dict[int, tuple[int | None, bytes | None]]:
        """Distinct ranks per signature: exact (a row each) up to RANKS_EXACT, then a HyperLogLog
        sketch, so a 100,000-rank storm does not write 100,000 membership rows. Returns the new
        (rank_count, sketch) of each signature whose ranks changed (None where unchanged)."""
        c = _SIG.c
        state = session.execute(
            select(c.id, c.rank_count, c.rank_sketch)
            .where(c.id.in_(sorted(ranks)))
            .order_by(c.id)
            .with_for_update(key_share=True)
        ).all()
        exact_rows = []
        sketches: dict[int, tuple[int, bytearray, bool]] = {}
        for sid, count, sketch in state:
            registers = bytearray(sketch or bytes(hll.SIZE))
            changed = hll.add_all(registers, ranks[sid])
            sketches[sid] = (count, registers, changed)
            if count < RANKS_EXACT:
                exact_rows += [(sid, "rank", v) for v in sorted(map(_member_value, ranks[sid]))]
        added = insert_counted(session, _MEMBER, _MEMBER_COLUMNS, exact_rows, count_by=1)
        out: dict[int, tuple[int | None, bytes | None]] = {}
        for sid, (count, registers, changed) in sketches.items():
            sketch = bytes(registers) if changed else None
            if count < RANKS_EXACT:
                exact = count + added[sid]
                out[sid] = (exact if exact < RANKS_EXACT else max(exact, hll.estimate(registers)), sketch)
            elif changed:
                out[sid] = (max(count, hll.estimate(registers)), sketch)
        return out
