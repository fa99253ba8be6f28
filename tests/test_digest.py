"""The weekly digest: content (snapshot), rendering limits, the exactly-once claim, catch-up and
scheduling. Multi-process and crash/restart tests are in test_digest_delivery.py."""

from __future__ import annotations

import json

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from incidentbot import digest
from incidentbot.localslack import validate_message
from incidentbot.models import (
    Ballot,
    DigestRun,
    Event,
    Hypothesis,
    HypothesisLog,
    HypothesisSignature,
    Outbox,
    Poll,
    PollOption,
    Signature,
)
from incidentbot.runtime import build_runtime

SNAPSHOTS = Path(__file__).parent / "snapshots"
BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc

RUNBOOK = """---
id: digest-nccl
title: NCCL watchdog timeouts
owner: "@net-oncall"
last_reviewed: 2026-11-01
severity: high
match:
  categories: [nccl_watchdog_timeout]
---
# NCCL watchdog timeouts

## Symptoms
Watchdog timeouts.

## Confirm
Check the fabric.

## Act
Drain the host.

## Escalate
Page the network team.
"""


class FakeClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


@pytest.fixture
def runbooks_dir(tmp_path) -> Path:
    d = tmp_path / "runbooks"
    d.mkdir()
    (d / "digest-nccl.md").write_text(RUNBOOK)
    return d


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(berlin(2025, 1, 20, 9, 30))


@pytest.fixture
def rt(db, settings_factory, runbooks_dir, clock):
    settings = settings_factory(
        runbooks_dir=runbooks_dir, tz="Europe/Berlin", channel="C0DIGEST", public_url="https://ib.example"
    )
    return build_runtime(settings, db=db, migrate=False, clock=clock)


_n = 0


def add_sig(session, title: str, category: str, first_seen: datetime, *, count: int = 0, merged_into=None) -> Signature:
    global _n
    _n += 1
    s = Signature(
        fingerprint=f"fp-{_n}-{title[:20]}",
        rules_version="t",
        title=title,
        category=category,
        cause_class="infrastructure",
        parser="test",
        template=title,
        count=count,
        first_seen=first_seen,
        last_seen=first_seen,
        merged_into=merged_into,
    )
    session.add(s)
    session.flush()
    return s


def add_events(session, sig: Signature, times: list[datetime], job: str = "job-a") -> None:
    global _n
    for i, t in enumerate(times):
        _n += 1
        session.add(Event(event_id=f"e-{_n}", job_id=f"{job}-{i % 3}", message=sig.title, time=t, signature_id=sig.id))
    sig.count += len(times)


def add_hyp(
    session, title: str, status: str, created: datetime, *, owner=None, resolved_at=None, updated=None, sigs=(), logs=()
) -> Hypothesis:
    h = Hypothesis(
        title=title,
        status=status,
        cause_class="software",
        created_at=created,
        updated_at=updated or created,
        last_activity_at=updated or created,
        owner=owner,
        resolved_at=resolved_at,
    )
    session.add(h)
    session.flush()
    for s in sigs:
        session.add(HypothesisSignature(hypothesis_id=h.id, signature_id=s.id, event_count=1))
    for kind, at in logs:
        session.add(HypothesisLog(hypothesis_id=h.id, at=at, kind=kind, text=f"{kind} (test)"))
    return h


def add_poll(
    session,
    question: str,
    created: datetime,
    options: list[tuple[str, int | None, str, int]],
    *,
    status="closed",
    outcome=None,
) -> Poll:
    p = Poll(
        question=question,
        status=status,
        creator="U0ALICE",
        channel=None,
        created_at=created,
        hypothesis_ids=[o[1] for o in options if o[1]],
    )
    session.add(p)
    session.flush()
    voter = 0
    ids = {}
    for pos, (label, hid, kind, votes) in enumerate(options):
        o = PollOption(poll_id=p.id, position=pos, label=label, hypothesis_id=hid, kind=kind)
        session.add(o)
        session.flush()
        ids[hid or kind] = o.id
        for _ in range(votes):
            voter += 1
            session.add(Ballot(poll_id=p.id, user_id=f"U{voter:03d}", option_id=o.id, at=created))
    if outcome is not None:
        out = dict(outcome)
        out["truth_option_ids"] = [ids[int(out["truth"][2:])]]
        p.outcome = out
    return p


def build_week(rt) -> None:
    """A hand-built week 2025-W03 (13–19 Jan 2025, Europe/Berlin) with one of everything."""
    with rt.db.write() as s:
        nccl = add_sig(
            s,
            "NCCL watchdog timeout: WorkNCCL(SeqNum=<NUM>, OpType=ALLREDUCE) ran for <NUM> ms",
            "nccl_watchdog_timeout",
            berlin(2025, 1, 2, 10, 0),
            count=40,
        )
        nccl_dup = add_sig(
            s,
            "Watchdog caught collective operation timeout",
            "nccl_watchdog_timeout",
            berlin(2025, 1, 3, 10, 0),
            merged_into=None,
        )
        cuda = add_sig(
            s, "CUDA error: an illegal memory access & <!channel> ping", "cuda_runtime", berlin(2025, 1, 16, 11, 0)
        )
        loader = add_sig(
            s, "DataLoader worker (pid <NUM>) is killed by signal: Killed.", "dataloader", berlin(2025, 1, 18, 3, 0)
        )
        add_sig(s, "Old and quiet", "slurm", berlin(2024, 12, 1, 0, 0), count=7)
        s.flush()
        nccl_dup.merged_into = nccl.id
        # NCCL (plus its merged duplicate): Mon 3, Tue 1, Wed 0+2, Thu 5, Fri 2, Sat 0, Sun 1 (23:30 local).
        add_events(
            s,
            nccl,
            [berlin(2025, 1, 13, h, 0) for h in (1, 2, 3)]
            + [berlin(2025, 1, 14, 12, 0)]
            + [berlin(2025, 1, 16, h, 5) for h in range(5)]
            + [berlin(2025, 1, 17, 8, 0), berlin(2025, 1, 17, 9, 0)]
            + [berlin(2025, 1, 19, 23, 30)],
        )
        add_events(s, nccl_dup, [berlin(2025, 1, 15, 7, 0), berlin(2025, 1, 15, 8, 0)], job="job-b")
        # Outside the week in Berlin (though inside it in UTC, or the reverse).
        add_events(s, nccl, [berlin(2025, 1, 12, 23, 30), berlin(2025, 1, 20, 0, 30)])
        add_events(
            s,
            cuda,
            [
                berlin(2025, 1, 16, 11, 0),
                berlin(2025, 1, 16, 12, 0),
                berlin(2025, 1, 17, 1, 0),
                berlin(2025, 1, 17, 2, 0),
            ],
            job="job-c",
        )
        add_events(s, loader, [berlin(2025, 1, 18, 3, 0)], job="job-d")

        add_hyp(
            s,
            "NCCL timeouts on rack r12",
            "open",
            berlin(2025, 1, 14, 12, 5),
            sigs=[nccl],
            logs=[("created", berlin(2025, 1, 14, 12, 5)), ("evidence", berlin(2025, 1, 15, 9, 0))],
        )
        h2 = add_hyp(
            s,
            "Driver 550.54 on <host> hangs",
            "resolved",
            berlin(2025, 1, 10, 9, 0),
            resolved_at=berlin(2025, 1, 15, 13, 30),
            owner="U0BOB",
            sigs=[nccl],
            logs=[("created", berlin(2025, 1, 10, 9, 0)), ("resolved", berlin(2025, 1, 15, 13, 30))],
        )
        add_hyp(
            s,
            "Illegal memory access from the fused attention kernel",
            "regressed",
            berlin(2025, 1, 1, 9, 0),
            owner="U0ALICE",
            sigs=[cuda],
            resolved_at=berlin(2025, 1, 5, 9, 0),
            logs=[("regressed", berlin(2025, 1, 16, 11, 1))],
        )
        add_hyp(
            s,
            "Host OOM kills dataloader workers",
            "confirmed",
            berlin(2025, 1, 18, 3, 5),
            updated=berlin(2025, 1, 18, 9, 0),
            sigs=[loader],
            logs=[("created", berlin(2025, 1, 18, 3, 5))],
        )
        add_hyp(
            s,
            "Flaky leaf switch",
            "rejected",
            berlin(2025, 1, 8, 9, 0),
            logs=[("rejected", berlin(2025, 1, 18, 10, 0))],
        )
        h6 = add_hyp(
            s,
            "Checkpoint path typo",
            "resolved",
            berlin(2025, 1, 14, 8, 0),
            resolved_at=berlin(2025, 1, 14, 10, 15),
            owner="U0CAROL",
            logs=[("created", berlin(2025, 1, 14, 8, 0)), ("resolved", berlin(2025, 1, 14, 10, 15))],
        )
        add_hyp(
            s,
            "Resolved last month",
            "resolved",
            berlin(2024, 12, 1, 8, 0),
            resolved_at=berlin(2024, 12, 2, 8, 0),
            logs=[("resolved", berlin(2024, 12, 2, 8, 0))],
        )

        add_poll(s, "Last week's poll", berlin(2025, 1, 8, 9, 0), [("H-2: driver", h2.id, "hypothesis", 1)])
        add_poll(
            s,
            "Which is the root cause?",
            berlin(2025, 1, 14, 10, 0),
            [
                (f"H-{h2.id}: driver", h2.id, "hypothesis", 3),
                (f"H-{h6.id}: typo", h6.id, "hypothesis", 1),
                ("Other / none of these", None, "other", 0),
            ],
            outcome={
                "truth": f"H-{h6.id}",
                "ballots": 4,
                "share_for_truth": 0.25,
                "room_right": False,
                "underdog": True,
            },
        )
        add_poll(
            s,
            "Is H-2 the root cause?",
            berlin(2025, 1, 15, 10, 0),
            [(f"H-{h2.id}: driver", h2.id, "hypothesis", 2), ("Other / none of these", None, "other", 0)],
            outcome={
                "truth": f"H-{h2.id}",
                "ballots": 2,
                "share_for_truth": 1.0,
                "room_right": True,
                "underdog": False,
            },
        )
        add_poll(
            s,
            "Is the <!here> switch to blame?",
            berlin(2025, 1, 18, 12, 0),
            [(f"H-{h2.id}: driver", h2.id, "hypothesis", 1), ("Other / none of these", None, "other", 0)],
            status="open",
        )


# -- weeks ----------------------------------------------------------------------------------------


def test_iso_week_and_default_week_follow_the_time_zone(rt, clock):
    assert digest.iso_week(datetime(2025, 1, 13, 0, 0)) == "2025-W03"
    assert digest.iso_week(datetime(2024, 12, 30)) == "2025-W01"
    # Monday 00:30 in Berlin is still Sunday in UTC: the last full Berlin week is W03, not W02.
    clock.now = berlin(2025, 1, 20, 0, 30)
    assert digest.default_week(rt) == "2025-W03"
    assert digest.compute(rt).week == "2025-W03"
    clock.now = berlin(2025, 1, 19, 23, 59)
    assert digest.default_week(rt) == "2025-W02"
    start, end = digest.week_bounds("2025-W03", "Europe/Berlin")
    assert (start.isoformat(), end.isoformat()) == ("2025-01-13T00:00:00+01:00", "2025-01-20T00:00:00+01:00")
    with pytest.raises(ValueError):
        digest.compute(rt, "2025-W54")
    with pytest.raises(ValueError):
        digest.compute(rt, "last week")


def test_sparkline():
    assert digest.sparkline([0, 0, 0]) == "▁▁▁"
    assert digest.sparkline([0, 1, 7, 3]) == "▁▂█▄"
    assert digest.sparkline([5, 5]) == "██"


# -- content --------------------------------------------------------------------------------------


def test_digest_for_a_hand_built_week_matches_the_snapshot(rt):
    build_week(rt)
    got = digest.preview(rt, "2025-W03")
    path = SNAPSHOTS / "digest_week.txt"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8")
    # The default week (clock: Monday 20 Jan 09:30 Berlin) is the same week.
    assert digest.preview(rt) == got
    assert digest.render_text(rt, week="2025-w03") == got


def test_digest_facts(rt):
    build_week(rt)
    d = digest.compute(rt, "2025-W03")
    assert d.events == 19 and d.jobs == 9 and d.signatures_seen == 3
    top = d.top[0]
    assert top.days == [3, 1, 2, 5, 2, 0, 1] and top.spark == "▅▂▄█▄▁▂"
    assert [s.title for s in d.new_signatures][0].startswith("CUDA error")
    assert [h.title for h in d.hypotheses["opened"]] == [
        "NCCL timeouts on rack r12",
        "Host OOM kills dataloader workers",
        "Checkpoint path typo",
    ]
    assert [h.status for h in d.hypotheses["confirmed"]] == ["confirmed"]
    assert len(d.hypotheses["resolved"]) == 2 and len(d.hypotheses["regressed"]) == 1
    # (5d 4h 30m + 2h 15m) / 2
    assert d.mttr == timedelta(days=2, hours=15, minutes=22, seconds=30)
    assert d.covered_events == 14  # the NCCL signature (and its merged duplicate) has a runbook
    assert d.votes["held"] == 3 and d.votes["scored"] == 2 and d.votes["room_right"] == 1
    assert [p.truth for p in d.votes["underdog_wins"]] == ["H-6"]
    assert {a.title: a.missing for a in d.attention} == {
        "Illegal memory access from the fused attention kernel": ["no runbook"],
        "Host OOM kills dataloader workers": ["no owner", "no runbook"],
        "NCCL timeouts on rack r12": ["no owner"],
    }


def test_block_kit_is_valid_and_escapes_untrusted_text(rt):
    build_week(rt)
    text, blocks = digest.render_blocks(rt, "2025-W03")
    assert validate_message({"channel": "C0DIGEST", "text": text, "blocks": blocks}) is None
    flat = str(blocks)
    assert "<!channel>" not in flat and "<!here>" not in flat and "<host>" not in flat
    assert "&lt;!channel&gt;" in flat and "illegal memory access &amp; " in flat
    assert "`▅▂▄█▄▁▂`" in flat
    assert "Underdog win" in flat


def test_an_empty_week_is_one_quiet_line(rt):
    out = digest.preview(rt, "2025-W03")
    assert out == (
        "Incident digest 2025-W03 · 13–19 Jan 2025 (Europe/Berlin)\n"
        "Quiet week: no failures, no new signatures, no hypothesis changes and no votes.\n"
    )
    text, blocks = digest.render_blocks(rt, "2025-W03")
    assert text == "Incident digest 2025-W03: quiet week."
    assert [b["type"] for b in blocks] == ["header", "context", "section", "context"]
    assert "Quiet week" in blocks[2]["text"]["text"]
    assert validate_message({"channel": "C", "text": text, "blocks": blocks}) is None


def test_a_quiet_week_still_lists_what_needs_attention(rt):
    with rt.db.write() as s:
        add_hyp(s, "Old open one", "open", berlin(2024, 12, 1, 8, 0))
    out = digest.preview(rt, "2025-W03")
    assert "Quiet week" in out and "H-1  Old open one [open] — no owner, no runbook" in out


def test_limits_hold_with_500_signatures_in_a_week(rt):
    nasty = "<!channel> & <@U123> " + "x" * 420 + " `code` *bold*\nsecond line"
    with rt.db.write() as s:
        for i in range(500):
            sig = add_sig(s, f"{i:03d} {nasty}", "cuda_runtime", berlin(2025, 1, 13, 1, 0) + timedelta(minutes=i))
            add_events(s, sig, [berlin(2025, 1, 13 + i % 7, 12, 0)] * (1 + i % 4))
        for i in range(40):
            add_hyp(
                s, f"H{i} {nasty}", "open", berlin(2025, 1, 14, 8, 0), logs=[("created", berlin(2025, 1, 14, 8, i))]
            )
        for i in range(12):
            add_poll(s, f"Q{i} {nasty}", berlin(2025, 1, 15, 8, i), [(f"L {nasty}"[:500], None, "other", 2)])
    text, blocks = digest.render_blocks(rt, "2025-W03")
    assert validate_message({"channel": "C0DIGEST", "text": text, "blocks": blocks}) is None
    assert len(blocks) <= 50
    for b in blocks:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000
    flat = str(blocks)
    assert "<!channel>" not in flat and "<@U123>" not in flat
    assert "… and 492 more — <https://ib.example/v1/signatures|all signatures>" in flat
    assert "… and 495 more — <https://ib.example/v1/signatures|all signatures>" in flat  # top 5 of 500
    assert "… and 34 more — <https://ib.example/v1/hypotheses|all hypotheses>" in flat
    out = digest.preview(rt, "2025-W03")
    assert "… and 492 more: https://ib.example/v1/signatures" in out
    assert max(len(line) for line in out.splitlines()) < 200


# -- exactly once -----------------------------------------------------------------------------------


def _counts(rt) -> tuple[int, int]:
    with rt.db.read() as s:
        return (
            s.scalar(select(func.count()).select_from(DigestRun)),
            s.scalar(select(func.count()).select_from(Outbox).where(Outbox.dedupe_key.like("digest:%"))),
        )


def test_run_digest_claims_and_enqueues_once(rt):
    assert digest.run_digest(rt, week="2025-W03", channel="C0DIGEST") is True
    assert digest.run_digest(rt, week="2025-W03", channel="C0DIGEST") is False
    assert digest.run_digest(rt, week="2025-w03", channel="C0DIGEST") is False
    assert _counts(rt) == (1, 1)
    with rt.db.read() as s:
        row = s.scalars(select(Outbox)).one()
        run = s.scalars(select(DigestRun)).one()
    assert row.op == "post" and row.channel == "C0DIGEST" and row.dedupe_key == "digest:C0DIGEST:2025-W03"
    assert row.payload == {"render": "digest", "week": "2025-W03", "channel": "C0DIGEST"}
    assert run.claimed_by == rt.worker_id
    # Another channel or another week is another unit.
    assert digest.run_digest(rt, week="2025-W03", channel="C0OTHER") is True
    assert digest.run_digest(rt, week="2025-W04", channel="C0DIGEST") is True
    assert _counts(rt) == (3, 3)


def test_the_outbox_renders_the_digest_at_delivery(rt):
    from incidentbot.slack.publish import Publisher

    build_week(rt)
    digest.run_digest(rt, week="2025-W03", channel="C0DIGEST")
    with rt.db.read() as s:
        row = s.scalars(select(Outbox)).one()
        rendered = Publisher(rt).render(s, row)
    assert (rendered.text, rendered.blocks) == digest.render_blocks(rt, "2025-W03")


def test_catch_up_posts_a_missed_run_within_the_grace_period_once(rt, clock, settings_factory, db, runbooks_dir):
    multi = build_runtime(
        settings_factory(runbooks_dir=runbooks_dir, tz="Europe/Berlin", channel="C0A, C0B,C0A"),
        db=db,
        migrate=False,
        clock=clock,
    )
    assert digest.channels(multi) == ["C0A", "C0B"]
    clock.now = berlin(2025, 1, 20, 8, 59)  # before Monday's 09:00: last fire was a week ago, outside grace
    assert digest.catch_up(multi) == []
    clock.now = berlin(2025, 1, 20, 14, 0)  # the service was down at 09:00
    assert digest.catch_up(multi) == ["C0A:2025-W03", "C0B:2025-W03"]
    assert digest.catch_up(multi) == []
    assert digest.catch_up(multi, now=berlin(2025, 1, 21, 8, 59)) == []
    assert _counts(multi) == (2, 2)
    # Past the grace period a missed run is skipped: Tuesday 28 Jan 09:01 is 24 h 1 min after W04's slot.
    assert digest.catch_up(multi, now=berlin(2025, 1, 28, 9, 1)) == []
    assert digest.catch_up(multi, now=berlin(2025, 1, 27, 9, 0)) == ["C0A:2025-W04", "C0B:2025-W04"]


def test_catch_up_honours_cron_and_time_zone(db, settings_factory, runbooks_dir):
    clock = FakeClock(datetime(2025, 3, 5, 17, 45, tzinfo=ZoneInfo("America/New_York")))
    rt = build_runtime(
        settings_factory(runbooks_dir=runbooks_dir, tz="America/New_York", channel="C0NY", digest_cron="30 17 * * wed"),
        db=db,
        migrate=False,
        clock=clock,
    )
    assert digest.catch_up(rt) == ["C0NY:2025-W09"]
    assert digest.catch_up(rt) == []


# -- scheduling -----------------------------------------------------------------------------------


def test_schedule_digest_schedules_the_cron_job_and_catches_up_once(rt, clock):
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    clock.now = berlin(2025, 1, 20, 11, 0)
    for restart in range(2):
        sched = BackgroundScheduler(timezone="Europe/Berlin")
        digest.schedule_digest(rt, sched)
        digest.schedule_digest(rt, sched)  # scheduling twice replaces the job, it does not add one
        sched.start(paused=True)
        try:
            [job] = sched.get_jobs()
            # The job runs against the runtime it was given: no registry, no pickled reference.
            assert job.id == digest.JOB_ID and job.func is digest.scheduled_run and job.args == (rt,)
            assert isinstance(job.trigger, CronTrigger) and str(job.trigger.timezone) == "Europe/Berlin"
            assert job.misfire_grace_time == 24 * 3600 and job.coalesce is True
            assert job.next_run_time.astimezone(BERLIN).strftime("%a %H:%M") == "Mon 09:00"
            # The start-up catch-up posted the 09:00 run once, not again after the "restart".
            assert _counts(rt) == (1, 1)
            job.func(*job.args)  # the job itself finds the week claimed
        finally:
            sched.shutdown(wait=False)
        assert _counts(rt) == (1, 1)


def test_no_channel_no_digest_job(db, settings_factory, runbooks_dir, clock):
    from apscheduler.schedulers.background import BackgroundScheduler

    quiet = build_runtime(settings_factory(runbooks_dir=runbooks_dir, channel=None), db=db, migrate=False, clock=clock)
    sched = BackgroundScheduler(timezone="UTC")
    digest.schedule_digest(quiet, sched)
    assert sched.get_jobs() == []


def test_the_scheduled_job_fires_and_posts_once(rt, clock, monkeypatch):
    """A real scheduler: the job fires and finds the week already claimed by the start-up
    catch-up, so nothing is queued twice."""
    import threading

    from apscheduler.schedulers.background import BackgroundScheduler

    calls = []
    fired = threading.Event()
    real = digest.catch_up

    def counting(rt_, now=None):
        out = real(rt_, now)
        calls.append(out)
        if len(calls) >= 2:
            fired.set()
        return out

    monkeypatch.setattr(digest, "catch_up", counting)
    clock.now = berlin(2025, 1, 20, 9, 0, 1)
    sched = BackgroundScheduler(timezone="Europe/Berlin")
    digest.schedule_digest(rt, sched)
    assert calls == [["C0DIGEST:2025-W03"]]
    sched.start()
    try:
        sched.modify_job(digest.JOB_ID, next_run_time=datetime.now(BERLIN))
        assert fired.wait(10), "the digest job did not fire"
    finally:
        sched.shutdown(wait=True)
    assert calls[1] == []
    assert _counts(rt) == (1, 1)


def test_digest_preview_in_slack_is_the_plain_text_and_posts_nothing(slack_harness):
    from incidentbot.digest import preview
    from tests.conftest import event

    h = slack_harness
    h.ingest([event(event_id="d1")])
    h.ws.wait_for(lambda: h.channel_messages(), timeout=10)
    before = len(h.channel_messages())
    reply = h.reply(h.command("digest preview"))
    shown = json.dumps(reply)
    expected = preview(h.rt)
    assert "```" in shown and "Preview only" in shown
    for line in [l for l in expected.splitlines() if l.strip()][:3]:
        assert json.dumps(line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))[1:-1] in shown, line
    assert len(h.channel_messages()) == before
    first = preview(h.rt, week="2025-W03").splitlines()[0]
    assert json.dumps(first.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))[1:-1] in h.reply_text(
        h.command("digest preview 2025-W03")
    )
    assert "digest preview" in h.reply_text(h.command("digest"))  # usage


def test_cli_digest_preview_and_a_bad_week(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, INCIDENTBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'd.db'}")
    ok = subprocess.run(
        [sys.executable, "-m", "incidentbot", "digest", "--preview", "--week", "2025-W03"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0 and ok.stdout.strip(), ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "incidentbot", "digest", "--preview", "--week", "2025-W99"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2 and "week" in bad.stderr.lower() and "Traceback" not in bad.stderr
