"""What outbox rows become in Slack, rendered at delivery time from the current state, and the
alert refresher that edits signature alerts in place as their counts grow."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from incidentbot.digest import render_blocks
from incidentbot.models import Hypothesis, NewSignatureQuota, Outbox, Poll, Signature, SlackMessage, id_of, utcnow
from incidentbot.services import messages
from incidentbot.services.outbox import Rendered, queue
from incidentbot.services.signatures import canonical_map
from incidentbot.slack import views
from incidentbot.slack.polls import poll_blocks

__all__ = ["Publisher"]

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, rt, *, clock: Callable[[], datetime] = utcnow):
        self.rt = rt
        self.clock = clock

    # -- rendering outbox rows ------------------------------------------------------------

    def render(self, session, row: Outbox) -> Rendered | None:
        p = row.payload or {}
        kind = p.get("render")
        if kind is None:
            # A row written as text by an earlier version (thread notes were): still delivered.
            return Rendered(text=p.get("text", ""), blocks=p.get("blocks"))
        if kind == "note":
            return Rendered(text=views.thread_note_text(p))
        if kind == "signature_alert":
            return self.render_alert(session, int(p["signature_id"]))
        if kind == "signature_rollup":
            quota = session.get(NewSignatureQuota, str(p["quota"]))
            if quota is None:
                return None
            text, blocks = views.signature_rollup(
                job_id=quota.job_id,
                rolled=quota.rolled,
                sample=[f"S-{i}" for i in quota.sample],
                since=quota.window_start,
                per_job=self.rt.settings.new_signature_alerts,
                window=self.rt.settings.new_signature_window,
                command=self.rt.settings.slash_command,
            )
            return Rendered(text=text, blocks=blocks)
        if kind == "poll":
            poll = session.get(Poll, int(p["poll_id"]))
            if poll is None:
                return None
            text, blocks = poll_blocks(
                self.rt.votes.record(session, poll),
                voters=self.rt.votes.voters(session, poll.id),
                public_url=self.rt.settings.public_url,
            )
            return Rendered(text=text, blocks=blocks, shown={"poll_id": poll.id, "version": poll.tally_version})
        if kind == "hypothesis":
            return self.render_hypothesis(session, int(p["hypothesis_id"]))
        if kind == "digest":
            text, blocks = render_blocks(self.rt, week=p["week"])
            return Rendered(text=text, blocks=blocks)
        raise ValueError(f"unknown render kind {kind!r}")

    def render_hypothesis(self, session, hid: int) -> Rendered | None:

        h = session.get(Hypothesis, hid)
        if h is None:
            return None
        record = self.rt.read_model.hypothesis_record(session, h)
        sids = [int(x[2:]) for x in record["signature_ids"]]
        sigs = list(session.scalars(select(Signature).where(col(Signature.id).in_(sids)))) if sids else []
        sig_records = [self.rt.read_model.signature_record(session, s) for s in sorted(sigs, key=lambda s: -s.count)]
        runbooks = [
            {"id": c.runbook.id, "title": c.runbook.title, "url": self.rt.runbooks.url(c.runbook.id)}
            for c in self.rt.runbooks.for_hypothesis(session, hid, sigs)[:1]
        ]
        text, blocks = views.hypothesis_blocks(
            record, signatures=sig_records, runbooks=runbooks, polls=[], public_url=self.rt.settings.public_url
        )
        return Rendered(text=f"New hypothesis {text}", blocks=blocks)

    def render_alert(self, session, sid: int) -> Rendered | None:
        sig = session.get(Signature, sid)
        if sig is None:
            return None
        record = self.rt.read_model.signature_with_example(session, sig)
        choices = self.rt.runbooks.for_signature(session, sig)
        runbook = None
        if choices:
            rb = choices[0].runbook
            runbook = {"id": rb.id, "title": rb.title, "url": self.rt.runbooks.url(rb.id)}
        muted = bool(sig.muted_until and sig.muted_until > self.clock())
        text, blocks = views.signature_alert(
            record, runbook=runbook, public_url=self.rt.settings.public_url, muted=muted
        )
        return Rendered(
            text=text,
            blocks=blocks,
            shown={"signature_id": sid, "count": record["count"], "jobs": sig.job_count, "hosts": sig.host_count},
        )

    def on_delivered(self, session, row: Outbox, rendered: Rendered) -> None:
        shown = rendered.shown or {}
        if "signature_id" in shown:
            sig = session.get(Signature, shown["signature_id"])
            if sig is not None:
                sig.alerted_count, sig.alerted_at = shown["count"], self.clock()
                if row.op == "post":
                    sig.alerted_jobs, sig.alerted_hosts = shown["jobs"], shown["hosts"]
        if "poll_id" in shown:
            poll = session.get(Poll, shown["poll_id"])
            if poll is not None and shown["version"] > poll.rendered_version:
                poll.rendered_version = shown["version"]

    # -- the alert refresher (one unit of work) ------------------------------------------

    def refresh_alert_once(self, *, interval: float) -> bool:
        """Edit one signature alert whose counts changed since it was last shown, at most once per
        ``interval`` seconds per alert; spread to new jobs or hosts is said in the thread."""
        now = self.clock()
        with self.rt.db.write() as session:
            posted = {
                m.key for m in session.scalars(select(SlackMessage).where(col(SlackMessage.key).like("alert:S-%")))
            }
            if not posted:
                return False
            due = session.scalars(
                select(Signature)
                .where(
                    col(Signature.merged_into).is_(None),
                    (col(Signature.alerted_at).is_(None))
                    | (col(Signature.alerted_at) <= now - timedelta(seconds=interval)),
                    (col(Signature.muted_until).is_(None)) | (col(Signature.muted_until) <= now),
                )
                .order_by(col(Signature.last_seen).desc())
                .limit(200)
            )
            cmap = canonical_map(session)
            for sig in due:
                sid = id_of(sig)
                if messages.alert_key(sid) not in posted:
                    continue
                merged = (
                    [s for s in self.rt.signatures.members(session, sig.id) if s.id != sig.id]
                    if sig.id in cmap.values()
                    else []
                )
                total = sig.count + sum(s.count for s in merged)
                if total == sig.alerted_count:
                    continue
                queue(session, messages.alert_edit(signature_id=sid))
                # (now, was) where the alert reached new jobs or hosts since it was last shown.
                jobs = (
                    [sig.job_count, sig.alerted_jobs] if sig.job_count > sig.alerted_jobs and sig.alerted_jobs else None
                )
                hosts = (
                    [sig.host_count, sig.alerted_hosts]
                    if sig.host_count > sig.alerted_hosts and sig.alerted_hosts
                    else None
                )
                if (jobs or hosts) and sig.alerted_jobs:
                    note = messages.thread_note(
                        channel=self.rt.settings.alert_channel,
                        thread_key=messages.alert_key(sid),
                        note="spread",
                        signature_id=sid,
                        jobs=jobs,
                        hosts=hosts,
                    )
                    queue(session, note)
                sig.alerted_jobs, sig.alerted_hosts = sig.job_count, sig.host_count
                # Claim this alert for ``interval`` even before delivery renders it.
                sig.alerted_at = now
                return True
        return False
