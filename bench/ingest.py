"""Ingest throughput over HTTP into SQLite and PostgreSQL, and a 100,000-rank watchdog burst.

    .venv/bin/python bench/ingest.py [--events 100000] [--clients 4] [--backends sqlite,postgresql]

The service runs as its own process (`incidentbot serve`, background workers off so only ingest is
measured); clients post batches of 1,000 from threads, each over one kept-alive connection. Prints a Markdown table.
Besides events per second, each row gives events per CPU-second of the service (all its processes): on a
machine shared with other work the wall-clock rate falls with the load, the CPU rate much less.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's incidentbot, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import TOKEN, cpu_seconds, database, peak_rss_mib, rss_mib, service  # noqa: E402

WATCHDOG = ("[rank{r}]:[E1206 18:44:{s:02}.{us} ProcessGroupNCCL.cpp:607] [Rank {r}] Watchdog caught collective "
            "operation timeout: WorkNCCL(SeqNum={seq}, OpType=ALLREDUCE, NumelIn=544997376, NumelOut=544997376, "
            "Timeout(ms)=600000) ran for {ms} milliseconds before timing out.")
MIXED = [
    WATCHDOG,
    "NVRM: Xid (PCI:0000:{b:02x}:00): 79, pid={pid}, GPU has fallen off the bus.",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {g}.00 GiB. GPU {r} has a total capacity of 79.10 GiB of which 1.2 GiB is free.",
    "RuntimeError: DataLoader worker (pid {pid}) is killed by signal: Killed.",
    "{host}:{pid}:{pid2} [{r}] transport/net_ib.cc:1295 NCCL WARN NET/IB : Got completion from peer 10.0.{b}.{r}<{port}> with status=12 opcode=0 len=0 vendor err 129 (Recv)",
    "Traceback (most recent call last):\n  File \"/job/train.py\", line {line}, in train_step\n    loss = model(batch)\n  File \"/job/model.py\", line 88, in forward\n    return self.head(x).sum()\nValueError: expected sequence of length {g} at dim 1 (got 7)",
]


def make_events(n: int, *, storm: bool, seed: int = 1, prefix: str = "e") -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tpl = WATCHDOG if storm else MIXED[i % len(MIXED)]
        r = i % 100_000
        msg = tpl.format(r=r, s=rng.randrange(60), us=rng.randrange(10**9), seq=rng.randrange(10**6), ms=600000 + rng.randrange(100),
                         b=rng.randrange(256), pid=rng.randrange(10**6), pid2=rng.randrange(10**6), g=rng.randrange(1, 80),
                         host=f"node{rng.randrange(2000):04}", port=rng.randrange(1024, 65535), line=rng.randrange(10, 900))
        out.append({"event_id": f"{prefix}-{i}", "job_id": "job-storm" if storm else f"job-{i % 50}", "message": msg,
                    "host": f"node{r // 8:05}", "rank": r, "step": 1000 + i % 5000, "code_version": "v1.4",
                    "versions": {"torch": "2.3.0", "nccl": "2.20.5"}})
    return out


def post_all(url: str, events: list[dict], *, clients: int, batch: int = 1000) -> tuple[float, int, int]:
    # Bodies are encoded and each client thread keeps one connection before the clock starts: the
    # clients share the service's two cores here, and in a fleet they run on other machines.
    bodies = [json.dumps({"events": events[i:i + batch]}).encode() for i in range(0, len(events), batch)]
    accepted = duplicates = 0
    local = threading.local()
    opened: list[httpx.Client] = []

    def connection() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=120, headers={
                "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            opened.append(local.client)
        return local.client

    def send(body: bytes) -> dict:
        c = connection()
        for attempt in range(5):
            r = c.post("/v1/events", content=body)
            if r.status_code == 202:
                return r.json()
            time.sleep(0.2 * (attempt + 1))
        raise RuntimeError(f"{r.status_code}: {r.text[:300]}")

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: connection().get("/healthz"), range(clients * 4)))
        started = time.perf_counter()
        for res in pool.map(send, bodies):
            accepted += res["accepted"]
            duplicates += res["duplicates"]
        elapsed = time.perf_counter() - started
    for c in opened:
        c.close()
    return elapsed, accepted, duplicates


def cpu_rate(events: int, pid: int, before: float) -> str:
    return f"{events / max(cpu_seconds(pid) - before, 1e-9):,.0f}"


def raw_sqlite_baseline(tmp: Path, events: list[dict]) -> tuple[float, float]:
    """events/s of the database alone: the same rows (fingerprints and signature ids precomputed)
    through sqlite3's executemany into the migrated schema, 1,000 per transaction, WAL and
    synchronous=FULL as the service runs it. No HTTP, validation, grouping or counters."""
    import sqlite3
    from datetime import datetime, timezone

    from incidentbot.db import Database

    path = tmp / "raw.db"
    Database(f"sqlite:///{path}").migrate()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("INSERT INTO signature (fingerprint, rules_version, title, category, cause_class, parser, template, details,"
                 " example, count, first_seen, last_seen, created_at, job_count, host_count, rank_count, alerted_count,"
                 " alerted_jobs, alerted_hosts) VALUES ('f', 'r', 't', 'other', 'unknown', 'p', 't', '{}', 'e', 0,"
                 " '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', 0, 0, 0, 0, 0, 0)")
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")
    rows = [(e["event_id"], e["job_id"], e["message"], now, now, "api", None, e["host"], None, e["rank"], e["step"],
             e["code_version"], json.dumps(e["versions"]), None, "{}", 1) for e in events]
    sql = ("INSERT INTO event (event_id, job_id, message, time, received_at, source, cluster, host, gpu, rank, step,"
           " code_version, versions, kind, attributes, signature_id) VALUES (" + ", ".join("?" * 16) + ")"
           " ON CONFLICT (event_id) DO NOTHING")
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), 1000):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows[i:i + 1000])
        conn.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    stored = conn.execute("SELECT count(*) FROM event").fetchone()[0]
    conn.close()
    assert stored == len(rows), (stored, len(rows))
    return len(rows) / elapsed, len(rows) / cpu


def in_process(kind: str, tmp: Path, n: int) -> tuple[float, float]:
    """events/s (wall, CPU) of ``IngestService.ingest`` alone in this process: the mixed events,
    validated beforehand, 1,000 per call on a fresh database. No HTTP, no client threads."""
    from incidentbot.db import Database
    from incidentbot.ingest import validate_batch
    from incidentbot.services.ingest import IngestService

    with database(kind, tmp) as url:
        db = Database(url)
        db.migrate()
        service = IngestService(db)
        events = make_events(n, storm=False, prefix="i")
        batches = [validate_batch(events[i:i + 1000])[0] for i in range(0, n, 1000)]
        started, cpu = time.perf_counter(), time.process_time()
        stored = sum(service.ingest(b).accepted for b in batches)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        db.dispose()
    assert stored == n, (stored, n)
    return n / elapsed, n / cpu


def soak(n: int, *, clients: int) -> None:
    """RSS of one service process as its SQLite database grows: every in-process cache is bounded,
    so memory should level off."""
    step = 250_000
    print("| events stored | RSS | peak RSS | events/s over the step |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp, database("sqlite", Path(tmp)) as url, service(url) as (base, proc):
        for start in range(0, n, step):
            # new jobs, hosts and texts all along: the worst case for the caches
            events = make_events(min(step, n - start), storm=False, prefix=f"k{start}", seed=start + 3)
            for e in events:
                e["job_id"] = f"{e['job_id']}-{start // step}"
            secs, acc, _dup = post_all(base, events, clients=clients)
            print(f"| {start + acc:,} | {rss_mib(proc.pid):.0f} MiB | {peak_rss_mib(proc.pid):.0f} MiB | {acc / secs:,.0f} |",
                  flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--processes", type=int, default=1, help="`serve --workers N` (with placeholder Slack credentials)")
    ap.add_argument("--in-process", action="store_true",
                    help="instead: IngestService.ingest alone in this process (wall and CPU rates, per backend)")
    ap.add_argument("--soak", type=int, default=0, metavar="N",
                    help="instead: post N mixed events to SQLite and print RSS every 250,000 (memory as the database grows)")
    a = ap.parse_args()
    if a.soak:
        soak(a.soak, clients=a.clients)
        return
    if a.in_process:
        print("| backend | workload | events/s | events per CPU-second |")
        print("|---|---|---|---|")
        with tempfile.TemporaryDirectory() as tmp:
            for kind in a.backends.split(","):
                wall, cpu = in_process(kind, Path(tmp), a.events)
                print(f"| {kind} (in process) | {a.events:,} mixed events, IngestService.ingest per 1,000 | {wall:,.0f} | {cpu:,.0f} |")
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in a.backends.split(","):
            env = {}
            if a.processes > 1:
                # Several processes need Slack credentials; no channel is set, so nothing is posted.
                env = {"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "bench", "SLACK_API_URL": "http://127.0.0.1:9/api/"}
            with database(kind, Path(tmp)) as url, service(url, extra_env=env, processes=a.processes) as (base, proc):
                mixed = make_events(a.events, storm=False, prefix="m")
                cpu = cpu_seconds(proc.pid)
                secs, acc, dup = post_all(base, mixed, clients=a.clients)
                rss_after_first = rss_mib(proc.pid)
                label = f" ({a.processes} processes)" if a.processes > 1 else ""
                rows.append((kind + label, f"{a.events:,} mixed events, batches of 1,000", f"{acc / secs:,.0f} events/s", f"{secs:.1f} s", acc, dup,
                             cpu_rate(acc, proc.pid, cpu)))
                storm = make_events(100_000, storm=True, prefix="s")
                cpu = cpu_seconds(proc.pid)
                secs, acc, dup = post_all(base, storm, clients=8)
                rows.append((kind + label, "100,000-rank watchdog burst", f"{acc / secs:,.0f} events/s", f"{secs:.1f} s", acc, dup,
                             cpu_rate(acc, proc.pid, cpu)))
                cpu = cpu_seconds(proc.pid)
                secs, acc, dup = post_all(base, storm[:20_000], clients=8)
                rows.append((kind + label, "20,000 retried (all duplicates)", f"{(acc + dup) / secs:,.0f} events/s", f"{secs:.1f} s", acc, dup,
                             cpu_rate(acc + dup, proc.pid, cpu)))
                more = make_events(a.events, storm=False, prefix="m2", seed=2)
                post_all(base, more, clients=a.clients)
                rows.append((kind + label, "memory: RSS after 100k / after 320k events, peak" + (" (all processes)" if label else ""), f"{rss_after_first:.0f} / {rss_mib(proc.pid):.0f} MiB",
                             f"peak {peak_rss_mib(proc.pid):.0f} MiB", "", "", ""))
        if "sqlite" in a.backends.split(","):
            rate, cpu_rate_ = raw_sqlite_baseline(Path(tmp), make_events(a.events, storm=False, prefix="r"))
            rows.append(("sqlite (reference)", f"raw executemany of {a.events:,} mixed rows, no service", f"{rate:,.0f} events/s",
                         f"{a.events / rate:.1f} s", "", "", f"{cpu_rate_:,.0f}"))
    print("| backend | workload | throughput | time | accepted | duplicates | events per service CPU-second |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")


if __name__ == "__main__":
    main()
