"""Slash-command ack latency with a big database: 1,000,000 events and 10,000 signatures.

    .venv/bin/python bench/slack.py [--events 1000000] [--signatures 10000] [--requests 400]

The service runs as its own process in HTTP mode against the local Slack stand-in (so requests
are signed and replies validated as Slack would); the database is filled directly, then analysed.
Prints p50/p99 of the time from sending a signed slash command to the bot's HTTP answer.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import TOKEN, database, service  # noqa: E402

from incidentbot.db import Database  # noqa: E402
from incidentbot.localslack import SlackSimulator, Workspace, run_in_thread  # noqa: E402
from incidentbot.models import Event, Signature  # noqa: E402
from incidentbot.services.sql import insert_new  # noqa: E402

SECRET = "bench-secret"


def fill(url: str, *, events: int, signatures: int) -> None:
    db = Database(url)
    db.migrate()
    rng = random.Random(1)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    with db.write() as s:
        sigs = [{"fingerprint": uuid.UUID(int=rng.getrandbits(128)).hex, "rules_version": "bench", "title": f"Failure mode {i}",
                 "category": rng.choice(["cuda_runtime", "xid", "nccl_watchdog_timeout", "python_exception", "other"]),
                 "cause_class": "unknown", "parser": "bench", "template": f"RuntimeError: failure mode {i} <NUM>",
                 "details": {}, "example": f"RuntimeError: failure mode {i} 7", "count": 0, "first_seen": start,
                 "last_seen": start, "created_at": start} for i in range(signatures)]
        s.execute(Signature.__table__.insert(), sigs)
    per = events // signatures
    batch = []
    for i in range(events):
        sid = 1 + (i % signatures) if rng.random() < 0.5 else 1 + int(rng.paretovariate(1.2)) % signatures
        batch.append({"event_id": f"b{i}", "job_id": f"job-{i % 300}", "message": f"RuntimeError: failure mode {sid - 1} {i}",
                      "time": start + timedelta(seconds=i), "received_at": start + timedelta(seconds=i), "source": "bench",
                      "cluster": "c1", "host": f"h{i % 2000}", "gpu": str(i % 8), "rank": i % 4096, "step": i % 50000,
                      "code_version": "v1", "versions": {}, "kind": None, "attributes": {}, "signature_id": sid, "hypothesis_id": None})
        if len(batch) == 20000:
            with db.write() as s:
                insert_new(s, Event.__table__, batch, key="event_id")
            batch = []
    if batch:
        with db.write() as s:
            insert_new(s, Event.__table__, batch, key="event_id")
    with db.write() as s:
        from sqlalchemy import func, select, update
        counts = dict(s.execute(select(Event.signature_id, func.count()).group_by(Event.signature_id)).all())
        for sid, n in counts.items():
            s.execute(update(Signature).where(Signature.id == sid).values(count=n, last_seen=start + timedelta(seconds=events)))
    db.dispose()
    del per


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--signatures", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--backend", default="sqlite")
    a = ap.parse_args()
    ws = Workspace()
    channel = ws.create_channel("incidents")
    user = ws.add_user("oncall")
    slack = run_in_thread(ws)
    with tempfile.TemporaryDirectory() as tmp, database(a.backend, Path(tmp)) as url:
        t = time.perf_counter()
        fill(url, events=a.events, signatures=a.signatures)
        print(f"filled {a.events:,} events / {a.signatures:,} signatures in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        env = {"SLACK_BOT_TOKEN": ws.bot_token, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.api_url,
               "INCIDENTBOT_CHANNEL": channel}
        with service(url, extra_env=env) as (base, _proc):
            sim = SlackSimulator(ws, bot_url=f"{base}/slack/events", signing_secret=SECRET, localslack_url=slack.url)
            import httpx
            t = time.perf_counter()
            httpx.post(f"{base}/v1/analyze", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=900).raise_for_status()
            print(f"analysis of {a.events:,} events (POST /v1/analyze) {time.perf_counter() - t:.1f}s", file=sys.stderr)
            commands = ["list", "help", "show H-1", "show S-17", "signatures top", "signatures new", "runbooks nccl", "vote stats"]
            lat: dict[str, list[float]] = {c: [] for c in commands}
            for i in range(a.requests):
                cmd = commands[i % len(commands)]
                r = sim.slash_command("/incident", cmd, user=user, channel=channel)
                assert r.status == 200, r.text
                lat[cmd].append(r.elapsed * 1000)
            every = sorted(x for v in lat.values() for x in v)
            q = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
            print(f"| command | n | p50 ms | p99 ms |\n|---|---|---|---|")
            for c, xs in lat.items():
                xs.sort()
                print(f"| `/incident {c}` | {len(xs)} | {q(xs, .5):.1f} | {q(xs, .99):.1f} |")
            print(f"| **all** | {len(every)} | {q(every, .5):.1f} | {q(every, .99):.1f} |")
            print(f"(mean {statistics.mean(every):.1f} ms; {a.events:,} events, {a.signatures:,} signatures, {a.backend})")
    slack.stop()


if __name__ == "__main__":
    main()
