"""What a week's digest says, computed from the database (pure data, no formatting beyond numbers).

Everything is ordered deterministically (counts descending, then ids) so the rendered text is
stable across SQLite and PostgreSQL and snapshot-testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import col

from incidentbot.models import (
    OPEN_STATUSES,
    Event,
    Hypothesis,
    HypothesisLog,
    HypothesisSignature,
    Poll,
    Signature,
    id_of,
)
from incidentbot.services.signatures import canonical_map

from .weeks import day_bounds, last_full_week, normalize_week, week_bounds

__all__ = [
    "Digest",
    "SignatureRow",
    "HypothesisRow",
    "PollRow",
    "AttentionRow",
    "compute_digest",
    "sparkline",
    "OPEN_STATUSES",
    "HYPOTHESIS_KINDS",
]

SPARK = "▁▂▃▄▅▆▇█"
# Timeline kinds the digest reports, in the order it shows them.
HYPOTHESIS_KINDS = ("opened", "confirmed", "resolved", "regressed", "rejected", "reopened")
_LOG_KIND = {
    "created": "opened",
    "confirmed": "confirmed",
    "resolved": "resolved",
    "regressed": "regressed",
    "rejected": "rejected",
    "reopened": "reopened",
}


def sparkline(values: list[int]) -> str:
    """One character per value: ▁ for zero, ▂…█ scaled to the largest value."""
    top = max(values, default=0)
    if top <= 0:
        return SPARK[0] * len(values)
    out = []
    for v in values:
        if v <= 0:
            out.append(SPARK[0])
        else:
            out.append(SPARK[min(7, max(1, round(v / top * 7)))])
    return "".join(out)


@dataclass
class SignatureRow:
    id: int
    title: str
    category: str
    week_count: int
    total: int
    days: list[int]
    new: bool

    @property
    def spark(self) -> str:
        return sparkline(self.days)


@dataclass
class HypothesisRow:
    id: int
    title: str
    status: str
    owner: str | None = None
    time_to_resolve: timedelta | None = None


@dataclass
class PollRow:
    id: int
    question: str
    status: str
    ballots: int
    truth: str | None = None  # "H-5" once the outcome is known
    truth_votes: int | None = None
    room_right: bool | None = None
    underdog: bool = False
    leader: str | None = None  # label of the most-voted option


@dataclass
class AttentionRow:
    id: int
    title: str
    status: str
    missing: list[str]


@dataclass
class Digest:
    week: str
    tz: str
    start: datetime  # local, inclusive
    end: datetime  # local, exclusive
    public_url: str
    events: int = 0
    jobs: int = 0
    signatures_seen: int = 0
    new_signatures: list[SignatureRow] = field(default_factory=list)
    top: list[SignatureRow] = field(default_factory=list)
    hypotheses: dict[str, list[HypothesisRow]] = field(default_factory=dict)
    mttr: timedelta | None = None
    resolved_count: int = 0
    polls: list[PollRow] = field(default_factory=list)
    votes: dict = field(default_factory=dict)
    covered_events: int = 0
    attention: list[AttentionRow] = field(default_factory=list)

    @property
    def last_day(self) -> datetime:
        return self.end - timedelta(days=1)

    @property
    def coverage(self) -> float | None:
        return self.covered_events / self.events if self.events else None

    @property
    def hypothesis_activity(self) -> int:
        return sum(len(v) for v in self.hypotheses.values())

    @property
    def quiet(self) -> bool:
        return not (self.events or self.new_signatures or self.hypothesis_activity or self.polls or self.resolved_count)


def _within(col, start: datetime, end: datetime):
    return (col >= start) & (col < end)


def compute_digest(rt, session, week: str | None = None, *, top_n: int = 5) -> Digest:
    tz = ZoneInfo(rt.settings.tz)
    week = normalize_week(week) if week else last_full_week(rt.clock(), tz)
    start, end = week_bounds(week, tz)
    d = Digest(week=week, tz=rt.settings.tz, start=start, end=end, public_url=rt.settings.public_url.rstrip("/"))
    ustart, uend = start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))

    # -- failures per signature per local day -----------------------------------------------
    cmap = canonical_map(session)
    per_day: dict[int, list[int]] = {}
    for i, (a, b) in enumerate(day_bounds(week, tz)):
        rows = session.execute(
            select(col(Event.signature_id), func.count())
            .where(_within(col(Event.time), a, b))
            .group_by(col(Event.signature_id))
        ).all()
        for sid, n in rows:
            canon = cmap.get(sid, sid)
            per_day.setdefault(canon, [0] * 7)[i] += n
    raw_per_sig: dict[int, int] = dict(
        session.execute(
            select(col(Event.signature_id), func.count())
            .where(_within(Event.time, ustart, uend))
            .group_by(col(Event.signature_id))
        ).all()
    )
    d.events = sum(raw_per_sig.values())
    d.jobs = (
        session.scalar(select(func.count(func.distinct(Event.job_id))).where(_within(Event.time, ustart, uend))) or 0
    )
    d.signatures_seen = len(per_day)

    sig_ids = set(per_day)
    new_ids = set(
        session.scalars(
            select(col(Signature.id)).where(
                _within(col(Signature.first_seen), ustart, uend), col(Signature.merged_into).is_(None)
            )
        )
    )
    sigs = (
        {
            s.id: s
            for s in session.scalars(
                select(Signature).where(col(Signature.id).in_(sig_ids | new_ids | set(raw_per_sig)))
            )
        }
        if (sig_ids or new_ids or raw_per_sig)
        else {}
    )

    def row(sid: int) -> SignatureRow:
        s = sigs[sid]
        days = per_day.get(sid, [0] * 7)
        return SignatureRow(
            id=sid,
            title=s.title,
            category=s.category,
            week_count=sum(days),
            total=s.count,
            days=days,
            new=sid in new_ids,
        )

    d.new_signatures = sorted((row(sid) for sid in new_ids if sid in sigs), key=lambda r: (-r.week_count, r.id))
    d.top = sorted((row(sid) for sid in sig_ids if sid in sigs), key=lambda r: (-r.week_count, r.id))[:top_n]

    # -- runbook coverage: share of the week's failures whose signature has a runbook ---------
    has_runbook: dict[int, bool] = {}

    def covered(sid: int) -> bool:
        if sid not in has_runbook:
            s = sigs.get(sid) or session.get(Signature, sid)
            has_runbook[sid] = bool(s is not None and rt.runbooks.for_signature(session, s))
        return has_runbook[sid]

    for sid, n in raw_per_sig.items():
        canon = cmap.get(sid, sid)
        if covered(sid) or (canon != sid and covered(canon)):
            d.covered_events += n

    # -- hypotheses: the week's timeline -------------------------------------------------------
    seen: dict[str, dict[int, HypothesisRow]] = {k: {} for k in HYPOTHESIS_KINDS}
    logs = session.execute(
        select(col(HypothesisLog.hypothesis_id), col(HypothesisLog.kind))
        .where(_within(col(HypothesisLog.at), ustart, uend), col(HypothesisLog.kind).in_(list(_LOG_KIND)))
        .order_by(col(HypothesisLog.at), col(HypothesisLog.id))
    ).all()
    hyp_ids = {hid for hid, _ in logs}
    confirmed_now = set(
        session.scalars(
            select(col(Hypothesis.id)).where(
                col(Hypothesis.status) == "confirmed", _within(col(Hypothesis.updated_at), ustart, uend)
            )
        )
    )
    resolved_in_week = list(
        session.scalars(
            select(Hypothesis).where(_within(col(Hypothesis.resolved_at), ustart, uend)).order_by(col(Hypothesis.id))
        )
    )
    hyps = (
        {h.id: h for h in session.scalars(select(Hypothesis).where(col(Hypothesis.id).in_(hyp_ids | confirmed_now)))}
        if (hyp_ids or confirmed_now)
        else {}
    )
    hyps.update({h.id: h for h in resolved_in_week})

    def hrow(h: Hypothesis) -> HypothesisRow:
        ttr = (
            (h.resolved_at - h.created_at) if h.resolved_at and h.created_at and h.resolved_at >= h.created_at else None
        )
        return HypothesisRow(id=id_of(h), title=h.title, status=h.status, owner=h.owner, time_to_resolve=ttr)

    for hid, kind in logs:
        if hid in hyps:
            seen[_LOG_KIND[kind]].setdefault(hid, hrow(hyps[hid]))
    for hid in confirmed_now:
        seen["confirmed"].setdefault(hid, hrow(hyps[hid]))
    for h in resolved_in_week:
        seen["resolved"].setdefault(h.id, hrow(h))
    d.hypotheses = {k: [v[i] for i in sorted(v)] for k, v in seen.items()}

    ttrs = [h.resolved_at - h.created_at for h in resolved_in_week if h.created_at and h.resolved_at >= h.created_at]
    d.resolved_count = len(resolved_in_week)
    if ttrs:
        d.mttr = sum(ttrs, timedelta()) / len(ttrs)

    # -- votes held this week, and how the room did --------------------------------------------
    polls = list(
        session.scalars(select(Poll).where(_within(col(Poll.created_at), ustart, uend)).order_by(col(Poll.id)))
    )
    for p in polls:
        tally = rt.votes.tally(session, p.id)
        ballots = sum(o["votes"] for o in tally)
        leader = None
        if ballots:
            best = max(o["votes"] for o in tally)
            leaders = [o for o in tally if o["votes"] == best]
            leader = leaders[0]["label"] if len(leaders) == 1 else None
        out = p.outcome or {}
        truth = out.get("truth")
        truth_votes = None
        if truth:
            right = set(out.get("truth_option_ids") or [])
            truth_votes = sum(o["votes"] for o in tally if o["id"] in right)
        d.polls.append(
            PollRow(
                id=p.id,
                question=p.question,
                status=p.status,
                ballots=ballots,
                truth=truth,
                truth_votes=truth_votes,
                room_right=out.get("room_right") if truth else None,
                underdog=bool(truth and out.get("underdog")),
                leader=leader,
            )
        )
    # VoteService.room_stats is the aggregate the rest of the bot reports; it counts polls created
    # since a time, which is exactly this week's polls unless later ones exist (a past week's
    # preview): then the same figures are taken from this week's Poll.outcome rows directly.
    later = session.scalar(select(func.count()).select_from(Poll).where(col(Poll.created_at) >= uend)) or 0
    scored = [p for p in d.polls if p.truth]
    if not later:
        stats = rt.votes.room_stats(session, since=ustart)
        underdog_ids = set(stats["underdog_wins"])
        n_scored, n_right = stats["scored"], stats["room_right"]
    else:
        underdog_ids = {f"P-{p.id}" for p in d.polls if p.underdog}
        n_scored, n_right = len(scored), sum(1 for p in scored if p.room_right)
    d.votes = {
        "held": len(d.polls),
        "ballots": sum(p.ballots for p in d.polls),
        "scored": n_scored,
        "room_right": n_right,
        "underdog_wins": [p for p in d.polls if f"P-{p.id}" in underdog_ids],
    }

    # -- what needs attention now ------------------------------------------------------------------
    open_hyps = list(
        session.scalars(
            select(Hypothesis).where(col(Hypothesis.status).in_(OPEN_STATUSES), col(Hypothesis.merged_into).is_(None))
        )
    )
    if open_hyps:
        links: dict[int, list[int]] = {}
        for hid, sid in session.execute(
            select(col(HypothesisSignature.hypothesis_id), col(HypothesisSignature.signature_id)).where(
                col(HypothesisSignature.hypothesis_id).in_([h.id for h in open_hyps])
            )
        ):
            links.setdefault(hid, []).append(sid)
        needed = {sid for v in links.values() for sid in v} - set(sigs)
        if needed:
            sigs.update({s.id: s for s in session.scalars(select(Signature).where(col(Signature.id).in_(needed)))})
        for h in open_hyps:
            missing = []
            if not h.owner:
                missing.append("no owner")
            hsigs = [sigs[s] for s in sorted(links.get(h.id, [])) if s in sigs]
            if not rt.runbooks.for_hypothesis(session, h.id, hsigs):
                missing.append("no runbook")
            if missing:
                d.attention.append(AttentionRow(id=h.id, title=h.title, status=h.status, missing=missing))
        rank = {"regressed": 0, "confirmed": 1, "open": 2}
        by_id = {h.id: h for h in open_hyps}
        d.attention.sort(key=lambda a: (rank.get(a.status, 3), -len(a.missing), -(by_id[a.id].event_count or 0), a.id))
    return d
