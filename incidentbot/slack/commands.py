"""The slash command's subcommands: parse the text, call services, return a Reply.

No Slack client here: the Bolt layer turns a Reply into an ack, a response_url post or a modal.
Every failure a user can cause becomes a helpful ephemeral reply, never a stack trace.
"""

from __future__ import annotations

import logging
import re
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from incidentbot.blocks import actions, button, code, context, esc, section
from incidentbot.digest import preview
from incidentbot.ids import IdError, parse_id
from incidentbot.models import OPEN_STATUSES, Hypothesis, Poll, Signature
from incidentbot.services.hypotheses import AnalysisBusy
from incidentbot.services.resolutions import ResolutionError
from incidentbot.services.signatures import SignatureNotFound
from incidentbot.services.votes import PollError
from incidentbot.settings import parse_duration
from incidentbot.slack import views
from incidentbot.slack.modals import resolve_modal
from incidentbot.slack.polls import poll_blocks

__all__ = ["Invocation", "Reply", "CommandRouter", "UsageError"]

log = logging.getLogger(__name__)


class UsageError(ValueError):
    """The user typed something we cannot act on; the message says what to type instead."""


@dataclass(frozen=True, slots=True)
class Invocation:
    user: str
    channel: str | None
    text: str
    trigger_id: str | None = None


@dataclass(slots=True)
class Reply:
    text: str
    blocks: list[dict] = field(default_factory=list)
    ephemeral: bool = True
    shareable: bool = False  # add a "Post to channel" button that re-runs the command in_channel
    view: dict | None = None  # open this modal instead of replying


class CommandRouter:
    def __init__(self, rt, *, is_admin):
        self.rt = rt
        self.is_admin = is_admin  # callable(user_id) -> bool
        self.command = rt.settings.slash_command
        self.handlers = {
            "help": self.help,
            "list": self.list,
            "show": self.show,
            "signatures": self.signatures,
            "analyze": self.analyze,
            "vote": self.vote,
            "resolve": self.resolve,
            "reject": self.reject,
            "reopen": self.reopen,
            "merge": self.merge,
            "split": self.split,
            "unmerge": self.unmerge,
            "mute": self.mute,
            "unmute": self.unmute,
            "link": self.link,
            "unlink": self.unlink,
            "runbooks": self.runbooks,
            "digest": self.digest,
        }

    def handle(self, inv: Invocation) -> Reply:
        try:
            words = shlex.split(inv.text or "")
        except ValueError:
            words = (inv.text or "").split()
        name = words[0].lower() if words else "help"
        handler = self.handlers.get(name)
        if handler is None:
            close = [c for c in self.handlers if c.startswith(name[:2])]
            hint = f" Did you mean `{esc(self.command)} {close[0]}`?" if close else ""
            text = f"I don't know `{esc(name[:40])}`.{hint} `{esc(self.command)} help` lists what I can do."
            return Reply(text, [section(text)])
        try:
            return handler(inv, words[1:])
        except (UsageError, IdError, PollError, ResolutionError, SignatureNotFound, LookupError, ValueError) as exc:
            text = f":warning: {esc(str(exc))}"
            return Reply(text, [section(text)])
        except PermissionError as exc:
            text = f":lock: {esc(str(exc))}"
            return Reply(text, [section(text)])

    def _admin(self, inv: Invocation, what: str) -> None:
        if not self.is_admin(inv.user):
            raise PermissionError(
                f"Sorry, only incident admins can {what}. Ask one of them, or your workspace admin to add you to INCIDENTBOT_ADMINS."
            )

    # -- reading -------------------------------------------------------------------------

    def help(self, inv, args) -> Reply:
        text, blocks = views.help_blocks(self.command)
        return Reply(text, blocks)

    def list(self, inv, args) -> Reply:
        # The message shows 20; one more says whether there are others.
        items = self.rt.read_model.hypotheses_list(status=",".join(OPEN_STATUSES), limit=21)
        with self.rt.db.read() as session:
            total = self.rt.hypotheses.count(session, statuses=OPEN_STATUSES)
        text, blocks = views.hypothesis_list(items, command=self.command, total=total)
        return Reply(text, blocks, shareable=True)

    def show(self, inv, args) -> Reply:
        if not args:
            raise UsageError(f"which one? `{self.command} show H-3` or `{self.command} show S-12`")
        prefix, n = parse_id(args[0])
        if prefix == "H":
            return self._show_hypothesis(n)
        if prefix == "S":
            return self._show_signature(n)
        return self._show_poll(n)

    def _show_hypothesis(self, hid: int) -> Reply:
        rt = self.rt
        h = rt.read_model.hypothesis_detail(f"H-{hid}")  # LookupError: said as a private reply
        with rt.db.read() as session:
            sig_ids = [int(s[2:]) for s in h["signature_ids"]]
            sigs = list(session.scalars(select(Signature).where(col(Signature.id).in_(sig_ids)))) if sig_ids else []
            sig_records = [rt.read_model.signature_record(session, s) for s in sorted(sigs, key=lambda s: -s.count)]
            runbooks = [self._runbook_dict(c.runbook.id) for c in rt.runbooks.for_hypothesis(session, hid, sigs)]
            polls = [rt.votes.record(session, p) for p in rt.votes.polls(session, hypothesis_id=hid, limit=3)]
        for p in polls:
            o = p.get("outcome") or {}
            if o.get("truth"):
                p["outcome_text"] = (
                    "room right"
                    if o.get("room_right")
                    else "room wrong" + (" (underdog win)" if o.get("underdog") else "")
                )
        text, blocks = views.hypothesis_blocks(
            h,
            signatures=sig_records,
            runbooks=runbooks,
            polls=polls,
            public_url=rt.settings.public_url,
            timeline=h.get("timeline", []),
        )
        return Reply(text, blocks, shareable=True)

    def _runbook_dict(self, rid: str) -> dict:
        rb = self.rt.runbooks.runbooks[rid]
        return {
            "id": rid,
            "title": rb.title,
            "url": self.rt.runbooks.url(rid),
            "summary": self.rt.runbooks.summary(rid, max_chars=900),
        }

    def _show_signature(self, sid: int) -> Reply:
        rt = self.rt
        sig = rt.read_model.signature_detail(f"S-{sid}")  # LookupError: said as a private reply
        hyp = rt.read_model.hypothesis_of_signature(sid)
        runbooks = [self._runbook_dict(r) for r in sig["runbook_ids"][:1]]
        text, blocks = views.signature_blocks(
            sig, runbooks=runbooks, hypothesis=hyp, explain=sig.get("explain"), public_url=self.rt.settings.public_url
        )
        return Reply(text, blocks, shareable=True)

    def _show_poll(self, pid: int) -> Reply:
        with self.rt.db.read() as session:
            poll = session.get(Poll, pid)
            if poll is None:
                raise LookupError(f"P-{pid} does not exist")
            text, blocks = poll_blocks(
                self.rt.votes.record(session, poll),
                voters=self.rt.votes.voters(session, pid),
                public_url=self.rt.settings.public_url,
            )
        # The copy shown privately carries no vote buttons: votes happen on the channel message.
        blocks = [b for b in blocks if b.get("type") != "actions"]
        for b in blocks:
            b.pop("accessory", None)
        return Reply(text, blocks)

    def signatures(self, inv, args) -> Reply:
        order = args[0].lower() if args else "new"
        if order not in ("new", "top"):
            raise UsageError(f"`{self.command} signatures new` or `{self.command} signatures top`")
        with self.rt.db.read() as session:
            rows = self.rt.signatures.page(session, limit=26, after=None, order=order)
            items = [self.rt.read_model.signature_record(session, s) for s in rows]
        text, blocks = views.signature_list(items, label="Newest" if order == "new" else "Most frequent")
        return Reply(text, blocks, shareable=True)

    def analyze(self, inv, args) -> Reply:
        try:
            # The lease the background worker, the API and the CLI take: two analyses never
            # reconcile over each other. The reply goes through response_url, so waiting is fine.
            s = self.rt.hypotheses.analyze_exclusive(worker=f"{self.rt.worker_id}:slack:{inv.user}")
        except AnalysisBusy as exc:
            text = f"Not analysed: {exc}."
            return Reply(text, [section(text)])
        text = (
            f"Analysed {s.events:,} events in {s.seconds:.1f}s: {s.hypotheses} hypotheses "
            f"({len(s.created)} new, {len(s.updated)} changed, {len(s.retired)} retired)."
        )
        return Reply(text, [section(text)])

    # -- votes ---------------------------------------------------------------------------

    def vote(self, inv, args) -> Reply:
        if args and args[0].lower() == "close":
            if len(args) < 2:
                raise UsageError(f"`{self.command} vote close P-3`")
            _, pid = parse_id(args[1], expect="P")
            self.rt.votes.close(poll_id=pid, actor=inv.user, is_admin=self.is_admin(inv.user))
            return Reply(f"Closed P-{pid}.", [section(f"Closed P-{pid}. The final tally is on the poll message.")])
        if args and args[0].lower() == "stats":
            with self.rt.db.read() as session:
                st = self.rt.votes.voter_stats(session, inv.user)
            if not st.polls:
                text = "You have no votes on resolved open-ballot polls yet. (Anonymous polls are never scored per person.)"
            else:
                text = (
                    f"Your record on {st.polls} resolved open-ballot polls: {st.hits} right "
                    f"({st.hit_rate:.0%}), mean Brier score {st.brier:.2f} (0 is perfect, 2 always wrong). Only you can see this."
                )
            return Reply(text, [section(text)])
        hyps, words, anonymous, closes = [], [], True, None
        i = 0
        while i < len(args):
            a = args[i]
            if a in ("--open", "--named"):
                anonymous = False
            elif a == "--anonymous":
                anonymous = True
            elif a == "--closes":
                if i + 1 >= len(args):
                    raise UsageError("--closes needs a duration like 2h or a time like 2025-03-01T17:00Z")
                closes = _parse_deadline(args[i + 1], now=self.rt.clock())
                i += 1
            elif re.fullmatch(r"[Hh]-?\d+", a):
                hyps.append(parse_id(a, expect="H")[1])
            else:
                words.append(a)
            i += 1
        channel = self.rt.settings.alert_channel or inv.channel
        pid = self.rt.votes.create(
            creator=inv.user,
            channel=channel,
            hypothesis_ids=hyps,
            question=" ".join(words),
            anonymous=anonymous,
            closes_at=closes,
        )
        text = f"Poll P-{pid} is posted in the channel." + (
            f" It closes {closes:%Y-%m-%d %H:%M} UTC." if closes else ""
        )
        return Reply(text, [section(text)])

    # -- decisions -----------------------------------------------------------------------

    def resolve(self, inv, args) -> Reply:
        self._admin(inv, "resolve hypotheses")
        if not args:
            raise UsageError(f"`{self.command} resolve H-3`")
        _, hid = parse_id(args[0], expect="H")
        with self.rt.db.read() as session:
            h = session.get(Hypothesis, hid)
            if h is None:
                raise LookupError(f"H-{hid} does not exist")
            title = h.title
        return Reply(f"Resolving H-{hid}", view=resolve_modal(hid, title))

    def reject(self, inv, args) -> Reply:
        self._admin(inv, "reject hypotheses")
        if len(args) < 2:
            raise UsageError(f"`{self.command} reject H-3 the reason it is wrong`")
        _, hid = parse_id(args[0], expect="H")
        self.rt.resolutions.reject(hid, reason=" ".join(args[1:]), actor=inv.user)
        return Reply(f"H-{hid} rejected.", [section(f"H-{hid} rejected: {esc(' '.join(args[1:]))}")])

    def reopen(self, inv, args) -> Reply:
        self._admin(inv, "reopen hypotheses")
        if not args:
            raise UsageError(f"`{self.command} reopen H-3`")
        _, hid = parse_id(args[0], expect="H")
        self.rt.resolutions.reopen(hid, actor=inv.user)
        return Reply(f"H-{hid} reopened.", [section(f"H-{hid} is open again.")])

    def merge(self, inv, args) -> Reply:
        self._admin(inv, "merge")
        if len(args) < 2:
            raise UsageError(
                f"`{self.command} merge H-1 H-2` (one cause) or `{self.command} merge S-1 S-2` (one failure mode)"
            )
        ids = [parse_id(a) for a in args]
        kinds = {p for p, _ in ids}
        if len(kinds) != 1 or kinds == {"P"}:
            raise UsageError("merge takes two or more hypotheses (H-n) or two or more signatures (S-n), not a mix")
        if kinds == {"S"}:
            target = ids[0][1]
            for _, sid in ids[1:]:
                self.rt.signatures.merge(sid, target, actor=inv.user)
            text = f"Merged {', '.join(f'S-{s}' for _, s in ids[1:])} into S-{target}. Later events of either land in S-{target}; `unmerge` undoes it."
        else:
            hid = self.rt.decisions.merge_hypotheses([n for _, n in ids], actor=inv.user)
            text = f"Merged into H-{hid}: one cause. The analysis keeps these signatures together from now on."
        return Reply(text, [section(text)])

    def split(self, inv, args) -> Reply:
        self._admin(inv, "split hypotheses")
        if len(args) < 2:
            raise UsageError(
                f"`{self.command} split H-3 S-7 [S-8 …]` takes those signatures out into their own hypothesis"
            )
        _, hid = parse_id(args[0], expect="H")
        sids = [parse_id(a, expect="S")[1] for a in args[1:]]
        self.rt.decisions.split_hypothesis(hid, sids, actor=inv.user)
        text = f"Split {', '.join(f'S-{s}' for s in sids)} out of H-{hid}; the analysis keeps them apart from now on."
        return Reply(text, [section(text)])

    def unmerge(self, inv, args) -> Reply:
        self._admin(inv, "unmerge signatures")
        if not args:
            raise UsageError(f"`{self.command} unmerge S-7`")
        _, sid = parse_id(args[0], expect="S")
        prev = self.rt.signatures.unmerge(sid, actor=inv.user)
        return Reply(
            f"S-{sid} unmerged from S-{prev}.",
            [section(f"S-{sid} stands on its own again (was merged into S-{prev}).")],
        )

    def mute(self, inv, args) -> Reply:
        self._admin(inv, "mute signatures")
        if not args:
            raise UsageError(f"`{self.command} mute S-7 [for 24h]`")
        _, sid = parse_id(args[0], expect="S")
        duration = None
        rest = [a for a in args[1:] if a.lower() != "for"]
        if rest:
            duration = parse_duration(rest[0])
        until = self.rt.signatures.mute(sid, until=None, duration=duration or timedelta(hours=24), actor=inv.user)
        text = f"S-{sid} muted until {until:%Y-%m-%d %H:%M} UTC: its alert stops updating. `{self.command} unmute S-{sid}` undoes it."
        return Reply(text, [section(text)])

    def unmute(self, inv, args) -> Reply:
        self._admin(inv, "unmute signatures")
        if not args:
            raise UsageError(f"`{self.command} unmute S-7`")
        _, sid = parse_id(args[0], expect="S")
        self.rt.signatures.unmute(sid)
        return Reply(f"S-{sid} unmuted.", [section(f"S-{sid} unmuted.")])

    # -- runbooks and digest -------------------------------------------------------------

    def link(self, inv, args, *, linked: bool = True) -> Reply:
        verb = "link" if linked else "unlink"
        if len(args) != 2:
            raise UsageError(f"`{self.command} {verb} H-3 RUNBOOK-ID` (see `{self.command} runbooks`)")
        prefix, n = parse_id(args[0])
        if prefix == "P":
            raise UsageError("runbooks link to hypotheses (H-n) or signatures (S-n)")
        self.rt.runbooks.link(f"{prefix}-{n}", args[1], actor=inv.user, linked=linked)
        if prefix == "H":
            self.rt.decisions.log(n, "runbook", f"runbook {args[1]} {verb}ed", actor=inv.user)
        text = (
            f"{'Linked' if linked else 'Unlinked'} runbook `{esc(args[1])}` {'to' if linked else 'from'} {prefix}-{n}."
        )
        return Reply(text, [section(text)])

    def unlink(self, inv, args) -> Reply:
        return self.link(inv, args, linked=False)

    def runbooks(self, inv, args) -> Reply:
        found = self.rt.runbooks.search(" ".join(args))
        if not found:
            text = f"No runbook matches `{esc(' '.join(args))}`."
            return Reply(text, [section(text)])
        lines = []
        for rb in found:
            url = self.rt.runbooks.url(rb.id)
            name = f"<{url}|{esc(rb.title)}>" if url else f"*{esc(rb.title)}*"
            lines.append(f"`{esc(rb.id)}` {name} — {esc(rb.severity)}")
        return Reply(
            f"{len(found)} runbooks",
            [
                section("\n".join(lines)),
                context(
                    f"`{esc(self.command)} link H-n RUNBOOK-ID` attaches one. "
                    "GET /v1/runbooks shows the incidents each served and their time to resolution."
                ),
            ],
            shareable=True,
        )

    def digest(self, inv, args) -> Reply:
        if not args or args[0].lower() != "preview":
            raise UsageError(f"`{self.command} digest preview [2025-W03]`")
        text = preview(self.rt, week=args[1] if len(args) > 1 else None)
        # The plain-text digest, as `incidentbot digest --preview` prints it, in code blocks of
        # whole lines (a section holds 3,000 characters).
        chunks: list[list[str]] = [[]]
        size = 0
        for line in text.splitlines():
            n = len(esc(line)) + 1
            if chunks[-1] and size + n > 2800:
                chunks.append([])
                size = 0
            chunks[-1].append(line)
            size += n
        blocks = [section(code("\n".join(c), 2900)) for c in chunks if "".join(c).strip()][:40]
        blocks.append(context("Preview only: nothing was posted. The weekly post goes to the channel on schedule."))
        return Reply(text.splitlines()[0] if text.strip() else "Digest preview", blocks)


def _parse_deadline(text: str, *, now: datetime) -> datetime:
    try:
        return now + parse_duration(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--closes takes a duration like 2h or a time like 2025-03-01T17:00Z, not {text!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def share_button(command_text: str) -> dict:
    return actions([button("Post to channel", "ib:share", command_text[:2000])], block_id="share")
