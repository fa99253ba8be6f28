"""Scale-out shown, not claimed: three `incidentbot serve` processes on one PostgreSQL database,
driven at once through the API and the local Slack stand-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import create_engine, text

from incidentbot.localslack import SlackSimulator, Workspace, run_in_thread
from tests.conftest import PG_URL, ROOT, eventually, free_port

pytestmark = pytest.mark.skipif(not PG_URL, reason="scale-out needs PostgreSQL (INCIDENTBOT_TEST_DATABASE_URL)")

SECRET = "scaleout-secret"
WATCHDOG = (
    "[rank{r}]:[E1206 18:44:12.715298746 ProcessGroupNCCL.cpp:607] [Rank {r}] Watchdog caught collective "
    "operation timeout: WorkNCCL(SeqNum=7753, OpType=ALLREDUCE, NumelIn=5, NumelOut=5, Timeout(ms)=600000) "
    "ran for 600061 milliseconds before timing out."
)


@pytest.fixture
def replicas(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL database")
    ws = Workspace()
    channel = ws.create_channel("incidents")
    users = [ws.add_user(f"u{i}", user_id=f"UR{i:03}") for i in range(30)]
    slack = run_in_thread(ws)
    procs, urls, logs = [], [], []
    env = dict(
        os.environ,
        INCIDENTBOT_DATABASE_URL=db_url,
        INCIDENTBOT_INGEST_TOKENS="t",
        SLACK_BOT_TOKEN=ws.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=slack.api_url,
        INCIDENTBOT_CHANNEL=channel,
        INCIDENTBOT_DIGEST_CRON="* * * * *",
        INCIDENTBOT_ALERT_UPDATE_SECONDS="1",
        INCIDENTBOT_LOG_LEVEL="WARNING",
    )
    for _ in range(3):
        port = free_port()
        log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "incidentbot", "serve", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")

    def up(url):
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually(lambda: all(up(u) for u in urls), timeout=60, interval=0.2)
        yield ws, channel, users, slack, urls, db_url
    finally:
        for p in procs:
            p.terminate()
        for p, log in zip(procs, logs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
            log.seek(0)
            errors = [l for l in log.read().splitlines() if "Traceback" in l]
            assert not errors, f"a replica logged a traceback: {log.name}"
        slack.stop()


def test_three_replicas_count_post_tally_and_digest_once(replicas):
    ws, channel, users, slack, urls, db_url = replicas
    engine = create_engine(db_url)
    # Events: the same batches go to different replicas at once (retries), so half are duplicates.
    batches = [
        [
            {
                "event_id": f"e{b}-{i}",
                "job_id": "job-1",
                "rank": b * 100 + i,
                "host": f"h{i % 8}",
                "message": WATCHDOG.format(r=b * 100 + i),
            }
            for i in range(100)
        ]
        for b in range(12)
    ]
    batches += [
        [
            {"event_id": f"m{i}", "job_id": "job-2", "message": f"RuntimeError: failure mode {name}"}
            for i, name in enumerate(("alpha", "beta", "gamma"))
        ]
    ]
    sends = [(urls[i % 3], b) for i, b in enumerate(batches)] + [(urls[(i + 1) % 3], b) for i, b in enumerate(batches)]

    def send(arg):
        url, batch = arg
        r = httpx.post(url + "/v1/events", json={"events": batch}, headers={"Authorization": "Bearer t"}, timeout=60)
        assert r.status_code == 202, r.text
        return r.json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, sends))
    assert sum(r["accepted"] for r in results) == 12 * 100 + 3
    assert sum(r["duplicates"] for r in results) == 12 * 100 + 3
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM event")).scalar() == 1203
        count, ranks = c.execute(
            text("SELECT count, rank_count FROM signature WHERE category = 'nccl_watchdog_timeout'")
        ).one()
    # Ranks are counted exactly up to 1,000, then by a HyperLogLog sketch (within about 2%).
    assert count == 1200 and abs(ranks - 1200) <= 24
    # Alerts: four new signatures, each posted once, whichever replica made it.
    ws.wait_for(lambda: len(ws.messages(channel)) >= 4, timeout=30)
    time.sleep(0)  # nothing more should arrive; the outbox rows are all done
    eventually(
        lambda: (
            engine.connect().execute(text("SELECT count(*) FROM outbox WHERE op='post' AND status <> 'done'")).scalar()
            == 0
        ),
        timeout=30,
    )
    alerts = [m for m in ws.messages(channel) if "alert:" in json.dumps(m.get("blocks"))]
    assert len(alerts) == 4
    # A poll: clicks spread over the replicas; the tally is exact.
    sims = [
        SlackSimulator(ws, bot_url=f"{u}/slack/events", signing_secret=SECRET, localslack_url=slack.url) for u in urls
    ]
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO hypothesis (title, status, cause_class, kind, scope, confidence, evidence, event_count, "
                "created_at, updated_at, last_activity_at, resolution) VALUES "
                "('one', 'open', 'software', '', '{}', 0.5, '[]', 0, now(), now(), now(), '{}'), "
                "('two', 'open', 'hardware', '', '{}', 0.5, '[]', 0, now(), now(), now(), '{}')"
            )
        )
    r = sims[0].slash_command("/incident", "vote H-1 H-2", user=users[0], channel=channel)
    assert r.status == 200
    poll = ws.wait_for(lambda: [m for m in ws.messages(channel) if "P-1" in json.dumps(m.get("blocks"))], timeout=20)[0]
    with engine.connect() as c:
        options = [row[0] for row in c.execute(text("SELECT id FROM polloption WHERE poll_id = 1 ORDER BY position"))]

    def click(i):
        sims[i % 3].click_button(
            user=users[i], action_id="ib:vote", channel=channel, message_ts=poll["ts"], block_id=f"opt:{options[i % 2]}"
        )
        sims[(i + 1) % 3].click_button(
            user=users[i], action_id="ib:vote", channel=channel, message_ts=poll["ts"], block_id=f"opt:{options[i % 2]}"
        )

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(click, range(30)))
    with engine.connect() as c:
        tally = dict(c.execute(text("SELECT option_id, count(*) FROM ballot GROUP BY option_id")).all())
    assert tally == {options[0]: 15, options[1]: 15}
    ws.wait_for(lambda: "30 votes" in json.dumps(ws.message(channel, poll["ts"])["blocks"]), timeout=30)
    # The digest: every replica catches up the same slot at start and fires every minute; one post.
    eventually(lambda: engine.connect().execute(text("SELECT count(*) FROM digestrun")).scalar() >= 1, timeout=30)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM digestrun")).scalar() == 1
    digests = eventually(lambda: [m for m in ws.messages(channel) if "digest" in m["text"].lower()], timeout=30)
    assert len(digests) == 1
    engine.dispose()
