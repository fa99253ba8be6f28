"""Channel polls on hypotheses: one changeable ballot per person, tallies, closing, calibration.

One ballot per (poll, user) is a unique constraint; a second click is an upsert that changes the
choice, so concurrent clicks on SQLite or PostgreSQL can never count a person twice. Tally edits go
through the outbox with a short delay and one pending edit per poll, so a burst of clicks makes a
few message edits, not one per click.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlmodel import col

from incidentbot import audit
from incidentbot.db import Database
from incidentbot.ids import IdError, parse_id
from incidentbot.models import (
    OPEN_STATUSES,
    Ballot,
    Hypothesis,
    HypothesisLog,
    HypothesisSignature,
    Outbox,
    Poll,
    PollOption,
    id_of,
    table_of,
    utcnow,
)
from incidentbot.services import messages
from incidentbot.services.outbox import queue
from incidentbot.services.sql import insert_for

__all__ = ["PollClosed", "PollError", "VoteService", "VoterStats", "MAX_POLL_HYPOTHESES"]

MAX_POLL_HYPOTHESES = 6
TALLY_DEBOUNCE = timedelta(seconds=1.5)
TALLY_MIN_GAP = timedelta(seconds=4)


class PollError(ValueError):
    pass


class PollClosed(PollError):
    pass


@dataclass(frozen=True, slots=True)
class VoterStats:
    user: str
    polls: int  # resolved open polls this person voted in
    hits: int
    brier: float | None  # mean multi-class Brier score; 0 is perfect, 2 is always wrong

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.polls if self.polls else None


class VoteService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow):
        self.db = db
        self.clock = clock

    # -- creating and voting -----------------------------------------------------------------

    def create(
        self,
        *,
        creator: str,
        channel: str | None,
        hypothesis_ids: Sequence[int] = (),
        question: str = "",
        anonymous: bool = True,
        closes_at: datetime | None = None,
    ) -> int:
        now = self.clock()
        with self.db.write() as session:
            if hypothesis_ids:
                found = {h: session.get(Hypothesis, h) for h in hypothesis_ids}
                missing = [f"H-{h}" for h, obj in found.items() if obj is None]
                if missing:
                    raise PollError(f"no such hypothesis: {', '.join(missing)}")
                hyps = [obj for obj in found.values() if obj is not None]
            else:
                hyps = list(
                    session.scalars(
                        select(Hypothesis)
                        .where(col(Hypothesis.status).in_(OPEN_STATUSES), col(Hypothesis.merged_into).is_(None))
                        .order_by(col(Hypothesis.last_activity_at).desc(), col(Hypothesis.id).desc())
                        .limit(MAX_POLL_HYPOTHESES)
                    )
                )
                if not hyps:
                    raise PollError("there are no open hypotheses to vote on")
            if len(hyps) > MAX_POLL_HYPOTHESES * 2:
                raise PollError(f"a poll takes at most {MAX_POLL_HYPOTHESES * 2} hypotheses")
            if closes_at is not None and closes_at <= now:
                raise PollError("the closing time is in the past")
            question = question.strip() or (
                "Which of these is the root cause?" if len(hyps) > 1 else f"Is H-{hyps[0].id} the root cause?"
            )
            poll = Poll(
                question=question[:1000],
                creator=creator,
                channel=channel,
                anonymous=anonymous,
                hypothesis_ids=[h.id for h in hyps],
                closes_at=closes_at,
                created_at=now,
            )
            session.add(poll)
            session.flush()
            pid = id_of(poll)
            options: list[PollOption] = []
            for h in hyps:
                ev = f" — {h.evidence[0]}" if h.evidence else ""
                options.append(
                    PollOption(
                        poll_id=pid,
                        position=len(options),
                        label=f"H-{h.id}: {h.title}{ev}"[:512],
                        hypothesis_id=h.id,
                        kind="hypothesis",
                    )
                )
            if len(hyps) > 1:
                options.append(
                    PollOption(
                        poll_id=pid,
                        position=len(options),
                        kind="one_cause",
                        label="One cause explains all of these (single bug)",
                    )
                )
                options.append(
                    PollOption(
                        poll_id=pid, position=len(options), kind="separate", label="Separate causes (several bugs)"
                    )
                )
            options.append(PollOption(poll_id=pid, position=len(options), kind="other", label="Other / none of these"))
            session.add_all(options)
            for h in hyps:
                session.add(
                    HypothesisLog(
                        hypothesis_id=id_of(h),
                        at=now,
                        kind="vote",
                        text=f"poll P-{pid} opened by {creator}: {question}",
                        actor=creator,
                    )
                )
            if channel:
                queue(session, messages.poll(channel=channel, poll_id=pid))
            return pid

    def cast(self, *, poll_id: int, user: str, option_id: int) -> str:
        """Record or change ``user``'s ballot. Returns the option's label."""
        now = self.clock()
        with self.db.write() as session:
            # Lock the poll row first: every transaction touching a poll and its outbox rows takes
            # them in this order, and a concurrent close cannot slip between check and ballot.
            poll = session.get(Poll, poll_id, with_for_update={"key_share": True})
            if poll is None:
                raise PollError(f"P-{poll_id} does not exist")
            if poll.status != "open" or (poll.closes_at and poll.closes_at <= now):
                raise PollClosed(f"P-{poll_id} is closed")
            option = session.get(PollOption, option_id)
            if option is None or option.poll_id != poll_id:
                raise PollError("that option is not part of this poll")
            stmt = insert_for(session, table_of(Ballot)).values(
                poll_id=poll_id, user_id=user, option_id=option_id, at=now
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["poll_id", "user_id"], set_={"option_id": option_id, "at": now}
            )
            session.execute(stmt)
            session.execute(
                update(Poll).where(col(Poll.id) == poll_id).values(tally_version=col(Poll.tally_version) + 1)
            )
            self._queue_tally_edit(session, poll)
            return option.label

    def _queue_tally_edit(self, session, poll: Poll, *, now_: bool = False) -> None:
        if not poll.channel:
            return
        tally = messages.poll_edit(poll_id=id_of(poll))
        added = queue(session, tally)
        if added and not now_:
            # Debounce: the edit waits a moment so a burst of clicks becomes one edit, and edits of
            # one poll are at least TALLY_MIN_GAP apart (Slack allows ~50 chat.update a minute).
            now = self.clock()
            # The last edit sent or being sent (a claimed row goes out about when it was due).
            last = session.scalar(
                select(func.max(Outbox.next_attempt_at)).where(
                    col(Outbox.message_key) == tally.message_key,
                    col(Outbox.op) == "update",
                    (col(Outbox.status) == "done") | col(Outbox.claimed_until).is_not(None),
                )
            )
            due = max(now + TALLY_DEBOUNCE, (last + TALLY_MIN_GAP) if last else now)
            session.execute(
                update(Outbox).where(col(Outbox.dedupe_key) == tally.dedupe_key).values(next_attempt_at=due)
            )

    # -- closing ---------------------------------------------------------------------------------

    def close(self, *, poll_id: int, actor: str, is_admin: bool) -> None:
        with self.db.write() as session:
            poll = session.get(Poll, poll_id, with_for_update={"key_share": True})
            if poll is None:
                raise PollError(f"P-{poll_id} does not exist")
            if poll.creator != actor and not is_admin:
                raise PermissionError(
                    f"only the poll's creator (<@{poll.creator}>) or an incident admin can close P-{poll_id}"
                )
            if poll.status == "closed":
                raise PollClosed(f"P-{poll_id} is already closed")
            self._close(session, poll, by=actor)

    def _close(self, session, poll: Poll, *, by: str) -> bool:
        now = self.clock()
        won = session.execute(
            update(Poll)
            .where(col(Poll.id) == poll.id, col(Poll.status) == "open")
            .values(status="closed", closed_at=now)
        ).rowcount
        if won:
            audit.note(session, f"P-{poll.id} closed ({by})")
            for hid in poll.hypothesis_ids:
                session.add(
                    HypothesisLog(
                        hypothesis_id=hid,
                        at=now,
                        kind="vote",
                        text=f"poll P-{poll.id} closed ({by}): {self._tally_text(session, id_of(poll))}",
                        actor=by,
                    )
                )
            session.refresh(poll)
            self._queue_tally_edit(session, poll, now_=True)
        return bool(won)

    def close_due(self) -> bool:
        """One unit of scheduled work: close one poll whose deadline has passed."""
        now = self.clock()
        with self.db.write() as session:
            poll = session.scalars(
                select(Poll)
                .where(col(Poll.status) == "open", col(Poll.closes_at).is_not(None), col(Poll.closes_at) <= now)
                .order_by(col(Poll.closes_at))
                .limit(1)
            ).first()
            if poll is None:
                return False
            self._close(session, poll, by="deadline")
            return True

    # -- reading -----------------------------------------------------------------------------

    def tally(self, session, poll_id: int) -> list[dict]:
        counts = dict(
            session.execute(
                select(col(Ballot.option_id), func.count())
                .where(col(Ballot.poll_id) == poll_id)
                .group_by(col(Ballot.option_id))
            ).all()
        )
        opts = session.scalars(
            select(PollOption).where(col(PollOption.poll_id) == poll_id).order_by(col(PollOption.position))
        )
        return [
            {
                "id": o.id,
                "label": o.label,
                "hypothesis_id": o.hypothesis_id,
                "kind": o.kind,
                "votes": counts.get(o.id, 0),
            }
            for o in opts
        ]

    def voters(self, session, poll_id: int) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for opt, user in session.execute(
            select(col(Ballot.option_id), col(Ballot.user_id))
            .where(col(Ballot.poll_id) == poll_id)
            .order_by(col(Ballot.at))
        ):
            out.setdefault(opt, []).append(user)
        return out

    def _tally_text(self, session, poll_id: int) -> str:
        t = self.tally(session, poll_id)
        return ", ".join(f"{o['label'].split(':')[0] if o['hypothesis_id'] else o['kind']}: {o['votes']}" for o in t)

    def record(self, session, poll: Poll) -> dict:
        options = self.tally(session, id_of(poll))
        return {
            "id": f"P-{poll.id}",
            "status": poll.status,
            "question": poll.question,
            "hypothesis_ids": [f"H-{h}" for h in poll.hypothesis_ids],
            "options": [
                {
                    "id": o["id"],
                    "label": o["label"],
                    "hypothesis_id": f"H-{o['hypothesis_id']}" if o["hypothesis_id"] else None,
                    "votes": o["votes"],
                }
                for o in options
            ],
            "anonymous": poll.anonymous,
            "creator": poll.creator,
            "closes_at": poll.closes_at,
            "closed_at": poll.closed_at,
            "created_at": poll.created_at,
            "outcome": poll.outcome or None,
        }

    def polls(
        self, session, *, hypothesis_id: int | None = None, status: str | None = None, limit: int = 200
    ) -> list[Poll]:
        q = select(Poll).order_by(col(Poll.id).desc())
        if status:
            q = q.where(col(Poll.status) == status)
        polls = list(session.scalars(q.limit(limit if hypothesis_id is None else 5000)))
        if hypothesis_id is not None:
            polls = [p for p in polls if hypothesis_id in p.hypothesis_ids][:limit]
        return polls

    def hypotheses_for(self, session, ref: str) -> list[int]:
        """Options for a "Start vote" click on an alert (S-n) or a hypothesis (H-n): the
        hypotheses it concerns first, then the other open ones with the most recent activity."""
        first: list[int] = []
        try:
            prefix, n = parse_id(ref)
        except IdError:
            prefix, n = "", 0
        if prefix == "H":
            first = [n]
        elif prefix == "S":
            first = list(
                session.scalars(
                    select(col(HypothesisSignature.hypothesis_id))
                    .join(Hypothesis, col(Hypothesis.id) == col(HypothesisSignature.hypothesis_id))
                    .where(col(HypothesisSignature.signature_id) == n, col(Hypothesis.merged_into).is_(None))
                )
            )
        others = session.scalars(
            select(col(Hypothesis.id))
            .where(col(Hypothesis.status).in_(OPEN_STATUSES), col(Hypothesis.merged_into).is_(None))
            .order_by(col(Hypothesis.last_activity_at).desc(), col(Hypothesis.id).desc())
            .limit(MAX_POLL_HYPOTHESES)
        )
        return list(dict.fromkeys([*first, *others]))[:MAX_POLL_HYPOTHESES]

    # -- calibration -------------------------------------------------------------------------

    def record_outcome(
        self, session, *, hypothesis_id: int, true_cause: bool, absorbed: Sequence[int] = ()
    ) -> list[int]:
        """After a resolution (``true_cause``) or rejection, score every poll that included the hypothesis.

        ``absorbed``: other hypotheses people merged into this one; when the truth spans several of a
        poll's hypotheses, the "one cause" option was right.
        """
        touched: list[int] = []
        for poll in self.polls(session, hypothesis_id=hypothesis_id):
            options = self.tally(session, id_of(poll))
            total = sum(o["votes"] for o in options)
            outcome = dict(poll.outcome or {})
            if not true_cause:
                outcome.setdefault("rejected", [])
                if f"H-{hypothesis_id}" not in outcome["rejected"]:
                    outcome["rejected"].append(f"H-{hypothesis_id}")
                poll.outcome = outcome
                touched.append(id_of(poll))
                continue
            in_poll = set(poll.hypothesis_ids)
            spans = len(in_poll & ({hypothesis_id} | set(absorbed))) > 1
            right = [o for o in options if o["hypothesis_id"] == hypothesis_id or (spans and o["kind"] == "one_cause")]
            right_ids = {o["id"] for o in right}
            right_votes = sum(o["votes"] for o in right)
            top = max((o["votes"] for o in options), default=0)
            leaders = [o["id"] for o in options if o["votes"] == top and top > 0]
            hyp_votes = sorted(o["votes"] for o in options if o["kind"] == "hypothesis")
            truth_votes = next((o["votes"] for o in options if o["hypothesis_id"] == hypothesis_id), 0)
            outcome.update(
                {
                    "truth": f"H-{hypothesis_id}",
                    "truth_option_ids": sorted(right_ids),
                    "ballots": total,
                    "share_for_truth": round(right_votes / total, 4) if total else None,
                    "room_right": bool(leaders) and all(o in right_ids for o in leaders),
                    # The least-voted hypothesis turned out to be the cause (with others ahead of it).
                    "underdog": total > 0
                    and len(hyp_votes) > 1
                    and truth_votes == hyp_votes[0]
                    and truth_votes < hyp_votes[-1],
                }
            )
            poll.outcome = outcome
            touched.append(id_of(poll))
        for poll in self.polls(session, hypothesis_id=hypothesis_id):
            if poll.id in touched:
                # The poll's message in the channel shows the outcome too, not only `show P-n`.
                self._queue_tally_edit(session, poll, now_=True)
        return touched

    def voter_stats(self, session, user: str) -> VoterStats:
        """Hit rate and Brier score over resolved, open (non-anonymous) polls this person voted in."""
        polls = [
            p
            for p in session.scalars(select(Poll).where(col(Poll.anonymous).is_(False)))
            if (p.outcome or {}).get("truth")
        ]
        hits = n = 0
        brier_sum = 0.0
        for p in polls:
            ballot = session.scalars(
                select(Ballot).where(col(Ballot.poll_id) == p.id, col(Ballot.user_id) == user)
            ).first()
            if ballot is None:
                continue
            n += 1
            right = set(p.outcome.get("truth_option_ids", []))
            hit = ballot.option_id in right
            hits += hit
            # A ballot is a forecast of 1 on one option: multi-class Brier is 0 when right, 2 when wrong
            # (0.5 when the truth is shared by two options and one of them was chosen).
            forecast = {ballot.option_id: 1.0}
            truth = {o: 1.0 / len(right) for o in right} if right else {}
            ids = set(forecast) | set(truth)
            brier_sum += sum((forecast.get(i, 0.0) - truth.get(i, 0.0)) ** 2 for i in ids)
        return VoterStats(user=user, polls=n, hits=hits, brier=round(brier_sum / n, 4) if n else None)

    def room_stats(self, session, *, since: datetime | None = None) -> dict:
        """Aggregate calibration for the digest: polls scored, room right, underdog wins."""
        q = select(Poll)
        if since is not None:
            q = q.where(col(Poll.created_at) >= since)
        scored = [p for p in session.scalars(q) if (p.outcome or {}).get("truth")]
        shares = [p.outcome["share_for_truth"] for p in scored if p.outcome.get("share_for_truth") is not None]
        return {
            "scored": len(scored),
            "room_right": sum(1 for p in scored if p.outcome.get("room_right")),
            "underdog_wins": [f"P-{p.id}" for p in scored if p.outcome.get("underdog")],
            "mean_share_for_truth": round(sum(shares) / len(shares), 4) if shares else None,
        }
