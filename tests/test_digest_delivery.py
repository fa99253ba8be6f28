"""The digest is posted exactly once per channel and week: by several replicas at once, across a
crash in the middle of posting, and through a Slack outage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from slack_sdk import WebClient
from sqlalchemy import func, select

from incidentbot import digest
from incidentbot.db import Database
from incidentbot.localslack import Workspace, run_in_thread
from incidentbot.models import DigestRun, Outbox, SlackMessage, utcnow
from incidentbot.runtime import build_runtime
from incidentbot.services.outbox import OutboxWorker
from incidentbot.slack.publish import Publisher

ROOT = Path(__file__).resolve().parents[1]
BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_0900 = datetime(2025, 1, 20, 9, 0, 0, 500000, tzinfo=BERLIN).astimezone(timezone.utc)


def counts(db: Database) -> tuple[int, int]:
    with db.read() as s:
        return (
            s.scalar(select(func.count()).select_from(DigestRun)),
            s.scalar(select(func.count()).select_from(Outbox).where(Outbox.dedupe_key.like("digest:%"))),
        )


# -- several replicas firing at 09:00 -----------------------------------------------------------------

REPLICA = r"""
import json, os, sys, time
from datetime import datetime, timezone
from incidentbot import digest
from incidentbot.runtime import build_runtime
from incidentbot.settings import load_settings

url, go, n, fixed = sys.argv[1], sys.argv[2], sys.argv[3], datetime.fromisoformat(sys.argv[4])
rt = build_runtime(load_settings(database_url=url, tz="Europe/Berlin", channel="C0DIGEST", runbooks_dir=os.devnull),
                   migrate=False, clock=lambda: fixed)
rt.worker_id = f"replica-{n}"
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.0005)
out = {"catch_up": digest.catch_up(rt)}
for week in ("2025-W03", "2025-W04", "2025-W05"):
    out[week] = digest.run_digest(rt, week=week, channel="C0DIGEST")
print(json.dumps(out), flush=True)
"""


def test_three_replicas_firing_at_once_post_once(db, tmp_path):
    """Three service processes on one database (PostgreSQL when INCIDENTBOT_TEST_DATABASE_URL is
    set; the SQLite file too) all run the 09:00 digest at the same instant: one claim, one post."""
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INCIDENTBOT_", "SLACK_"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA, db.url, str(go), str(i), MONDAY_0900.isoformat()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=env,
        )
        for i in range(3)
    ]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        go.write_text("go")
        results = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert sorted(len(r["catch_up"]) for r in results) == [0, 0, 1]
    assert [r["catch_up"] for r in results if r["catch_up"]] == [["C0DIGEST:2025-W03"]]
    assert all(r["2025-W03"] is False for r in results)
    for week in ("2025-W04", "2025-W05"):
        assert sorted(r[week] for r in results) == [False, False, True]
    assert counts(db) == (3, 3)
    with db.read() as s:
        rows = s.scalars(select(DigestRun).where(DigestRun.week == "2025-W03")).all()
        assert len(rows) == 1 and rows[0].claimed_by.startswith("replica-")
        assert (
            s.scalar(select(func.count()).select_from(Outbox).where(Outbox.dedupe_key == "digest:C0DIGEST:2025-W03"))
            == 1
        )


# -- a crash mid-post, and a Slack outage, against the local Slack stand-in ------------------------------


class Killed(BaseException):
    """The process dies here (not an Exception: nothing in the worker handles it)."""


class KillAfterPost(WebClient):
    def chat_postMessage(self, **kw):
        super().chat_postMessage(**kw)
        raise Killed()


class KillBeforePost(WebClient):
    def chat_postMessage(self, **kw):
        raise Killed()


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def slack():
    ws = Workspace()
    ch = ws.create_channel("gpu-incidents")
    server = run_in_thread(ws)
    yield ws, ch, server
    server.stop()


@pytest.fixture
def make_rt(db_url, settings_factory, tmp_path):
    def make(channel: str):
        # A fresh Database and Runtime each time: a "process".
        return build_runtime(
            settings_factory(tz="Europe/Berlin", channel=channel, runbooks_dir=tmp_path),
            db=Database(db_url),
            migrate=False,
            clock=lambda: MONDAY_0900 + timedelta(minutes=20),
        )

    return make


def worker(rt, client: WebClient, clock) -> OutboxWorker:
    publisher = Publisher(rt, clock=clock)
    return OutboxWorker(
        rt.db,
        client=client,
        render=publisher.render,
        clock=clock,
        worker_id=rt.worker_id,
        on_delivered=publisher.on_delivered,
    )


def digest_messages(ws, ch) -> list[dict]:
    return [m for m in ws.messages(ch) if "Incident digest" in m["text"]]


@pytest.mark.parametrize("kill", [KillAfterPost, KillBeforePost], ids=["killed-after-slack-accepted", "killed-before"])
def test_a_process_killed_mid_post_and_restarted_posts_once(slack, make_rt, kill):
    ws, ch, server = slack
    rt = make_rt(ch)
    assert digest.catch_up(rt) == [f"{ch}:2025-W03"]  # claimed and enqueued in one transaction
    first = worker(rt, kill(token=ws.bot_token, base_url=server.api_url), Clock(utcnow()))
    with pytest.raises(Killed):
        first.deliver_one()
    assert len(digest_messages(ws, ch)) == (1 if kill is KillAfterPost else 0)

    # Restart: a new process, the same database. The schedule's catch-up and a direct run find the
    # week claimed; a fresh outbox worker (after the dead one's claim lapsed) finishes the post.
    rt2 = make_rt(ch)
    assert digest.catch_up(rt2) == []
    assert digest.run_digest(rt2, week="2025-W03", channel=ch) is False
    second = worker(rt2, WebClient(token=ws.bot_token, base_url=server.api_url), Clock(utcnow() + timedelta(minutes=2)))
    assert second.drain() == 1
    assert second.drain() == 0

    msgs = digest_messages(ws, ch)
    assert len(msgs) == 1
    assert ws.call_count("chat.postMessage") == 1
    assert msgs[0]["text"].startswith("Incident digest 2025-W03")
    assert msgs[0]["blocks"][0]["text"]["text"] == "Incident digest · 2025-W03"
    with rt2.db.read() as s:
        row = s.scalars(select(Outbox).where(Outbox.dedupe_key == f"digest:{ch}:2025-W03")).one()
        assert row.status == "done"
        assert s.get(SlackMessage, f"digest:{ch}:2025-W03").ts == msgs[0]["ts"]
    assert counts(rt2.db) == (1, 1)


def test_a_slack_outage_during_posting_delays_the_post_but_posts_once(slack, make_rt):
    ws, ch, server = slack
    rt = make_rt(ch)
    assert digest.run_digest(rt, week="2025-W03", channel=ch) is True
    ws.fail_next("chat.postMessage", status=503, times=3)
    clock = Clock(utcnow())
    w = worker(rt, WebClient(token=ws.bot_token, base_url=server.api_url), clock)
    for _ in range(10):
        w.deliver_one()
        clock.now += timedelta(minutes=10)
        if digest_messages(ws, ch):
            break
    assert w.drain() == 0
    assert len(digest_messages(ws, ch)) == 1
    assert ws.call_count("chat.postMessage") == 4  # three refused, one posted
    assert digest.run_digest(rt, week="2025-W03", channel=ch) is False
    assert digest.catch_up(rt) == []
    assert len(digest_messages(ws, ch)) == 1


def test_one_post_per_configured_channel(make_rt, slack):
    ws, ch, server = slack
    other = ws.create_channel("training-leads")
    rt = make_rt(f"{ch}, {other}")
    assert digest.catch_up(rt) == [f"{ch}:2025-W03", f"{other}:2025-W03"]
    w = worker(rt, WebClient(token=ws.bot_token, base_url=server.api_url), Clock(utcnow()))
    assert w.drain() == 2
    assert len(digest_messages(ws, ch)) == 1 and len(digest_messages(ws, other)) == 1
    assert digest.catch_up(rt) == [] and w.drain() == 0
