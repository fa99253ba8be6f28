"""Fault injection against a real `incidentbot serve` subprocess: SIGKILL during ingest, SIGKILL
during Slack delivery, PostgreSQL dropping the service's connections under traffic, a PostgreSQL
server of its own crashing and restarting under traffic, and Slack answering 429 then 500 for a
long stretch.

    .venv/bin/python bench/faults.py [--backends sqlite,postgresql] [--scale 4]

Each scenario counts what the clients were told against what the database and the Slack stand-in
hold afterwards. Prints a Markdown table. `tests/test_reliability_faults.py` runs the same functions
at a smaller size and asserts the same properties.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import database  # noqa: E402
from storm import TOKEN, Service, db_counts, slack_standin  # noqa: E402

TEXTS = [
    "NVRM: Xid (PCI:0000:{b:02x}:00): 79, pid=1896, GPU has fallen off the bus.",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU {r} has a total capacity of 79.10 GiB",
    "RuntimeError: DataLoader worker (pid {r}) is killed by signal: Killed.",
    "RuntimeError: CUDA error: an illegal memory access was encountered",
    "RuntimeError: NCCL communicator was aborted on rank {r}.",
    "ValueError: expected sequence of length 4 at dim 1 (got 7)",
    "OSError: [Errno 28] No space left on device: '/checkpoints/step_{r}.pt'",
    "RuntimeError: Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!",
]


def mixed_events(n: int, *, prefix: str, kinds: int = 4) -> list[dict]:
    return [{"event_id": f"{prefix}-{i}", "job_id": f"job-{i % 7}", "rank": i, "host": f"node{i % 64:03}",
             "message": TEXTS[i % kinds].format(b=i % 256, r=i)} for i in range(n)]


@dataclass
class Outcome:
    name: str
    sent: int = 0
    acknowledged: int = 0  # events in batches that got 202
    statuses: dict = field(default_factory=dict)
    transport_errors: int = 0
    stored: int = 0
    lost: int = 0  # acknowledged but not stored
    extra: dict = field(default_factory=dict)
    seconds: float = 0.0


class Clients:
    """Batches posted from threads; errors and 5xx are retried until a 202 (or a deadline)."""

    def __init__(self, base_url_fn, outcome: Outcome, *, timeout: float = 30):
        self.url = base_url_fn
        self.o = outcome
        self.lock = threading.Lock()
        self.acked_ids: set[str] = set()
        self.timeout = timeout

    def send(self, batch: list[dict], *, deadline: float = 90) -> None:
        stop = time.monotonic() + deadline
        delay = 0.05
        with httpx.Client(timeout=self.timeout, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            while time.monotonic() < stop:
                try:
                    r = c.post(self.url() + "/v1/events", json={"events": batch})
                    with self.lock:
                        self.o.statuses[r.status_code] = self.o.statuses.get(r.status_code, 0) + 1
                    if r.status_code == 202:
                        with self.lock:
                            self.o.acknowledged += len(batch)
                            self.acked_ids.update(e["event_id"] for e in batch)
                        return
                    if r.status_code < 500:
                        raise RuntimeError(f"refused {r.status_code}: {r.text[:200]}")
                except httpx.TransportError:
                    with self.lock:
                        self.o.transport_errors += 1
                time.sleep(delay)
                delay = min(1.0, delay * 2)
        raise RuntimeError("batch never acknowledged")


def _traffic(name: str, db_url: str, *, prefix: str, events: int, batch: int, workers: str):
    """A scenario's outcome, its events and their batches, a started service, and its clients."""
    o = Outcome(name)
    evs = mixed_events(events, prefix=prefix)
    batches = [evs[i:i + batch] for i in range(0, len(evs), batch)]
    svc = Service(db_url, None, workers=workers).start()
    return o, evs, batches, svc, Clients(lambda: svc.url, o)


def _seconds_until_healthy(url: str, *, limit: float = 30.0) -> float | None:
    """Seconds from now until the service's /healthz answers 200 (None if not within ``limit``)."""
    since = time.monotonic()
    while time.monotonic() - since < limit:
        try:
            if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                return time.monotonic() - since
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    return None


def stored_ids(db_url: str) -> set[str]:
    from incidentbot.models import Event

    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            return set(c.scalars(select(Event.event_id)))
    finally:
        engine.dispose()


# -- 1. SIGKILL in the middle of ingest ------------------------------------------------------------

def _tally(o, db_url: str, cl, evs, t0: float) -> dict:
    """Fill in what was sent, stored and lost (acknowledged but not stored); return the counts."""
    o.seconds = time.perf_counter() - t0
    o.sent = len(evs)
    counts = db_counts(db_url)
    o.stored = counts["events"]
    o.lost = len(cl.acked_ids - stored_ids(db_url))
    return counts


def kill_during_ingest(db_url: str, *, events: int = 20_000, batch: int = 200, clients: int = 6, kills: int = 2) -> Outcome:
    o, evs, batches, svc, cl = _traffic("SIGKILL during ingest", db_url, prefix="k", events=events, batch=batch,
                                        workers="off")
    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            futures = [pool.submit(cl.send, b) for b in batches]
            for k in range(kills):
                # Kill while batches are in flight, then start again on the same port.
                target = (k + 1) * len(evs) // (kills + 2)
                while o.acknowledged < target:
                    time.sleep(0.01)
                svc.kill()
                o.extra.setdefault("acknowledged_at_kill", []).append(o.acknowledged)
                svc.start()
            for f in futures:
                f.result()
    finally:
        svc.stop()
    counts = _tally(o, db_url, cl, evs, t0)
    o.extra.update(distinct=counts["distinct_ids"], signature_count_sum=counts["signature_count_sum"], kills=kills)
    return o


# -- 2. SIGKILL in the middle of Slack delivery ----------------------------------------------------

def kill_during_delivery(db_url: str, slack, *, signatures: int = 6, delay: float = 0.8, failing: bool = False) -> Outcome:
    """Slack is slow (each post is stored, then answered `delay` s later) or failing; the service is
    killed while posts are in flight and started again: every alert is in the channel exactly once."""
    o = Outcome("SIGKILL during Slack delivery" + (" (Slack 503)" if failing else " (Slack slow)"))
    ws = slack.ws
    original = ws.post_message

    def slow_post(*a, **kw):
        msg = original(*a, **kw)
        time.sleep(delay)  # stored in the channel, but the answer is late: the outcome is unknown to the bot
        return msg

    ws.post_message = slow_post
    svc = Service(db_url, slack, workers="on").start()
    t0 = time.perf_counter()
    try:
        evs = [{"event_id": f"d-{i}", "job_id": "job-1", "message": TEXTS[i % len(TEXTS)].format(b=1, r=1)} for i in range(signatures)]
        r = httpx.post(svc.url + "/v1/events", json={"events": evs}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert r.status_code == 202, r.text
        o.sent = o.acknowledged = signatures
        if failing:
            ws.wait_for(lambda: len(slack.top_level()) >= 1, timeout=30)
            ws.fail_for(2, 503)
            ws.wait_for(lambda: ws.call_count("chat.postMessage") >= 3, timeout=30)
        else:
            ws.wait_for(lambda: len(slack.top_level()) >= 2, timeout=30)
        svc.kill()
        o.extra["posted_at_kill"] = len(slack.top_level())
        # A killed worker's claim is a 60 s lease; expire it instead of waiting the minute out.
        from incidentbot.models import Outbox
        engine = create_engine(db_url)
        with engine.begin() as c:
            o.extra["claimed_at_kill"] = c.execute(update(Outbox).where(Outbox.claimed_until.is_not(None))
                                                   .values(claimed_until=None)).rowcount
        engine.dispose()
        ws.post_message = original
        svc.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            c = db_counts(db_url)
            if c["outbox_open"] == 0:
                break
            time.sleep(0.2)
    finally:
        ws.post_message = original
        svc.stop()
    o.seconds = time.perf_counter() - t0
    msgs = slack.top_level()
    outbox_ids = [(m.get("metadata") or {}).get("event_payload", {}).get("outbox_id") for m in msgs]
    o.stored = len(msgs)
    o.extra.update(duplicates=len(outbox_ids) - len(set(outbox_ids)), posts=ws.call_count("chat.postMessage"),
                   lookups=ws.call_count("conversations.history"), counts=db_counts(db_url),
                   signatures_in_messages=len({json.dumps(m.get("blocks", [{}])[0]) for m in msgs}))
    o.lost = max(0, signatures - len(set(outbox_ids)))
    return o


# -- 3. PostgreSQL drops the service's connections under traffic -----------------------------------

def pg_connections_dropped(db_url: str, *, events: int = 12_000, batch: int = 200, clients: int = 4,
                           storm_seconds: float = 3.0, every: float = 0.25) -> Outcome:
    """What a PostgreSQL restart looks like to the service: every server connection is terminated,
    repeatedly, while clients post. Clients see errors they can retry; nothing is half-written."""
    dbname = db_url.rsplit("/", 1)[1]
    admin = create_engine(db_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    terminated = 0

    def storm() -> None:
        nonlocal terminated
        end = time.monotonic() + storm_seconds
        while time.monotonic() < end:
            with admin.connect() as c:
                terminated += c.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": dbname}).scalar()
            time.sleep(every)

    try:
        o = _database_fault("PostgreSQL connections terminated under traffic", db_url, storm, prefix="p",
                            events=events, batch=batch, clients=clients, after=0.1)
    finally:
        admin.dispose()
    o.extra["terminated"] = terminated
    return o


def _database_fault(name: str, db_url: str, fault, *, prefix: str, events: int, batch: int, clients: int,
                    after: float) -> Outcome:
    """Clients post; once ``after`` of the events are acknowledged, ``fault()`` runs; then how long
    the service took to answer /healthz again, and what the database holds once every batch is in."""
    o, evs, batches, svc, cl = _traffic(name, db_url, prefix=prefix, events=events, batch=batch, workers="on")
    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            futures = [pool.submit(cl.send, b) for b in batches]
            while o.acknowledged < len(evs) * after:
                time.sleep(0.01)
            fault()
            recovered = _seconds_until_healthy(svc.url)
            for f in futures:
                f.result()
        health = httpx.get(svc.url + "/healthz", timeout=5).status_code
    finally:
        svc.stop()
    counts = _tally(o, db_url, cl, evs, t0)
    o.extra.update(recovered_s=recovered, health_after=health, distinct=counts["distinct_ids"],
                   signature_count_sum=counts["signature_count_sum"], server_tracebacks=svc.log_text().count("Traceback"))
    return o


# -- 3b. A real PostgreSQL restart (crash and recovery) under traffic ------------------------------

@contextmanager
def throwaway_postgres():
    """A PostgreSQL server of its own (initdb in a temporary directory, a free port), run as the
    postgres user, so the test can crash and restart it without touching the shared server.
    Yields (url, restart); restart() stops it the way a crash does (`pg_ctl -m immediate`) and
    starts it again (crash recovery). Raises RuntimeError when it cannot be had here."""
    import glob
    import os
    import pwd
    import shutil
    import socket
    import subprocess

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins or os.geteuid() != 0:
        raise RuntimeError("needs PostgreSQL's initdb/pg_ctl and root (to run them as the postgres user)")
    bindir = Path(bins[-1]).parent
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("no postgres user") from None
    root = Path(tempfile.mkdtemp(prefix="incidentbot-pg-"))
    data = root / "data"
    os.chown(root, pw.pw_uid, pw.pw_gid)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def as_postgres(*args: str, check: bool = True):
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=120,
                              check=check)

    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    try:
        as_postgres(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"could not start a throwaway PostgreSQL: {exc.stderr[-500:]}") from None

    def restart(down_for: float = 1.0) -> None:
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        time.sleep(down_for)
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start")

    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", restart
    finally:
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


def pg_restarted(db_url: str, restart, *, events: int = 12_000, batch: int = 200, clients: int = 4,
                 down_for: float = 1.0) -> Outcome:
    """The PostgreSQL server crashes (immediate stop) and comes back after ``down_for`` seconds
    while clients post: acknowledged events survive the crash, retried batches are stored once,
    counters agree with the rows, and the service recovers without a restart of its own."""
    return _database_fault("PostgreSQL server crashed and restarted under traffic", db_url, lambda: restart(down_for),
                           prefix="r", events=events, batch=batch, clients=clients, after=0.2)


# -- 4. Slack answering 429 and then 500 for a long stretch ----------------------------------------

def slack_down_for_a_while(db_url: str, slack, *, seconds_429: float = 4, seconds_500: float = 4, jobs: int = 5) -> Outcome:
    """An alert, then a stretch of 429s and then of 500s while new signatures and thread notes
    (spread to new jobs) queue up: everything is delivered afterwards, once, in order per thread."""
    o = Outcome(f"Slack 429 for {seconds_429:g} s, then 500 for {seconds_500:g} s")
    ws = slack.ws
    svc = Service(db_url, slack, workers="on").start()
    hdr = {"Authorization": f"Bearer {TOKEN}"}
    t0 = time.perf_counter()
    try:
        def ingest(evs):
            r = httpx.post(svc.url + "/v1/events", json={"events": evs}, headers=hdr, timeout=30)
            assert r.status_code == 202, r.text
            o.acknowledged += len(evs)

        watchdog = TEXTS[4]
        ingest([{"event_id": "s-0", "job_id": "job-0", "rank": 0, "message": watchdog.format(r=0)}])
        ws.wait_for(lambda: slack.top_level(), timeout=30)
        ws.fail_for(seconds_429, 429)
        for j in range(1, jobs):
            ingest([{"event_id": f"s-{j}", "job_id": f"job-{j}", "rank": j, "message": watchdog.format(r=j)},
                    {"event_id": f"n-{j}", "job_id": f"job-{j}", "message": TEXTS[j % 4].format(b=j, r=j)}])
            time.sleep(seconds_429 / jobs)
        time.sleep(max(0.0, seconds_429 - (time.perf_counter() - t0)) + 0.2)
        ws.fail_for(seconds_500, 500)
        ingest([{"event_id": f"late-{k}", "job_id": f"job-late-{k}", "rank": 100 + k, "message": watchdog.format(r=100 + k)}
                for k in range(3)])
        # Settled: the outbox empty and still empty a refresher period later (the alert refresher
        # runs every 2 s and may queue an edit and a thread note after the last post went out).
        deadline = time.monotonic() + 90
        quiet_since = None
        while time.monotonic() < deadline:
            if db_counts(db_url)["outbox_open"]:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 3.0:
                break
            time.sleep(0.2)
    finally:
        svc.stop()
    o.seconds = time.perf_counter() - t0
    o.sent = o.acknowledged
    everything = slack.everything()
    by_thread: dict[str, list[int]] = {}
    for m in everything:
        oid = ((m.get("metadata") or {}).get("event_payload") or {}).get("outbox_id")
        by_thread.setdefault(m.get("thread_ts") or m["ts"], []).append(oid)
    ids = [oid for v in by_thread.values() for oid in v]
    from incidentbot.models import Outbox
    engine = create_engine(db_url)
    with engine.connect() as c:
        posts = c.scalar(select(func.count()).select_from(Outbox).where(Outbox.op == "post"))
        failed = c.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "failed"))
    engine.dispose()
    o.stored = len(everything)
    o.lost = posts - len(set(ids))
    statuses = {}
    for call in ws.calls():
        statuses[call.status] = statuses.get(call.status, 0) + 1
    o.statuses = statuses
    o.extra["order"] = {t: v for t, v in by_thread.items() if len(v) > 1}
    o.extra.update(outbox_posts=posts, outbox_failed=failed, duplicates=len(ids) - len(set(ids)),
                   in_order=all(v[1:] == sorted(v[1:]) and all(x > v[0] for x in v[1:]) for v in by_thread.values()),
                   threads=len(by_thread), replies=sum(len(v) - 1 for v in by_thread.values()),
                   edits=sum(ws.edit_count(slack.channel, m["ts"]) for m in slack.top_level()))
    return o


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--scale", type=int, default=4, help="multiplies the event counts of the ingest scenarios")
    ap.add_argument("--slack-outage", type=float, default=60.0, metavar="SECONDS",
                    help="how long Slack answers 429, and then as long 500 (default 60 + 60)")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in a.backends.split(","):
            with database(kind, Path(tmp)) as url:
                rows.append((kind, kill_during_ingest(url, events=5_000 * a.scale, kills=3)))
            with database(kind, Path(tmp)) as url, slack_standin() as slack:
                rows.append((kind, kill_during_delivery(url, slack, signatures=8)))
            with database(kind, Path(tmp)) as url, slack_standin() as slack:
                rows.append((kind, kill_during_delivery(url, slack, signatures=8, failing=True)))
            if kind == "postgresql":
                with database(kind, Path(tmp)) as url:
                    rows.append((kind, pg_connections_dropped(url, events=3_000 * a.scale, storm_seconds=5)))
                try:
                    with throwaway_postgres() as (url, restart):
                        rows.append((kind, pg_restarted(url, restart, events=3_000 * a.scale, down_for=3.0)))
                except RuntimeError as exc:
                    print(f"skipped the PostgreSQL restart: {exc}", file=sys.stderr)
            with database(kind, Path(tmp)) as url, slack_standin() as slack:
                rows.append((kind, slack_down_for_a_while(url, slack, seconds_429=a.slack_outage, seconds_500=a.slack_outage)))
    print("| backend | fault | sent / acknowledged (202) | stored | acknowledged but lost | client saw | time | details |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, o in rows:
        seen = ", ".join(f"{k}×{v}" for k, v in sorted(o.statuses.items(), key=lambda kv: str(kv[0])))
        if o.transport_errors:
            seen += f", connection errors×{o.transport_errors}"
        print(f"| {kind} | {o.name} | {o.sent:,} / {o.acknowledged:,} | {o.stored:,} | {o.lost} | {seen or '—'} "
              f"| {o.seconds:.1f} s | {json.dumps(o.extra, default=str)} |")


if __name__ == "__main__":
    main()
