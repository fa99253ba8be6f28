"""Analysis over the whole history at bounded cost: aggregate rows, load + analyse time and peak
memory at 1M and 10M stored events (mostly 100,000-rank storms, plus rare signals).

    .venv/bin/python bench/history.py [--sizes 1000000,10000000] [--backend sqlite|postgresql]

How events are inserted (said in the output too):
- the first 1,000,000 events of every size go through ``IngestService.ingest`` (the batch function
  the HTTP route calls: fingerprints, aggregates, counters, one transaction per 5,000), so the
  aggregate rows are the ones ingest keeps;
- beyond that (the 10M run), further storms are written with bulk SQL: event rows and their
  aggregate rows computed the same way (``aggregate_key``), because 9M events through the service
  would take hours on this machine. The analysis reads the same tables either way.

The analysis is ``HypothesisService.analyze`` with no row cap (INCIDENTBOT_ANALYSIS_MAX_EVENTS=0),
in this process; peak RSS is ``resource.getrusage`` (the process's high-water mark, so each size
runs in its own child process), and tracemalloc's peak of Python allocations during the analysis.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
XID79 = "NVRM: Xid (PCI:0000:1b:00): 79, pid={pid}, name=python, GPU has fallen off the bus."
WATCHDOG = ("[rank{r}]:[E1202 08:00:{s:02}.{us:06} ProcessGroupNCCL.cpp:607] [Rank {r}] Watchdog caught collective "
            "operation timeout: WorkNCCL(SeqNum=88123, OpType=ALLREDUCE, NumelIn=544997376, NumelOut=544997376, "
            "Timeout(ms)=600000) ran for 600{ms:03} milliseconds before timing out.")
RARE = [  # (job, host, text) recurring every ~25 minutes for the whole history
    ("job-train", "node00007", XID79),
    ("job-train", "node00031", "RuntimeError: CUDA error: an illegal memory access was encountered (pid {pid})"),
]
VERSIONS = {"torch": "2.4.0", "cuda": "12.4", "nccl": "2.21.5"}
STORM_HOSTS = 12_500  # x 8 ranks = 100,000 events per storm
SERVICE_EVENTS = 1_000_000


def _ev(**kw):
    from incidentbot.ingest.schema import EventIn

    kw.setdefault("versions", dict(VERSIONS))
    kw.setdefault("attributes", {})
    for name in ("cluster", "gpu", "rank", "step", "code_version", "kind", "run", "attempt"):
        kw.setdefault(name, None)
    return EventIn.model_construct(**kw)


def storm_events(k: int, hosts: int = STORM_HOSTS):
    rng = random.Random(k)
    start = T0 + timedelta(hours=6 * k)
    for r in range(hosts * 8):
        t = start + timedelta(seconds=rng.random() * 20)
        yield _ev(event_id=f"s{k}-{r}", job_id=f"job-storm{k}", host=f"node{r // 8:05}", gpu=str(r % 8), rank=r,
                  step=41_000 + k, code_version="v7", time=t, run=f"run-{k // 4}", attempt=k % 4,
                  message=WATCHDOG.format(r=r, s=t.second, us=t.microsecond, ms=rng.randrange(1000)))


def rare_events(n_storms: int):
    # Every 25 minutes across the whole span the storms cover.
    span = timedelta(hours=6 * max(1, n_storms))
    i = 0
    while timedelta(minutes=25 * i) < span:
        for j, (job, host, tpl) in enumerate(RARE):
            yield _ev(event_id=f"rare{j}-{i}", job_id=job, host=host, gpu="3", rank=27, step=500 + 731 * i,
                      code_version="v7", message=tpl.format(pid=4000 + i),
                      time=T0 + timedelta(minutes=25 * i, seconds=7 + j))
        i += 1


def progress_events():
    fleet = [f"node{h:05}" for h in range(64)]
    for n, host in enumerate(fleet):
        for k, step in enumerate((0, 200_000)):
            yield _ev(event_id=f"p-{n}-{k}", job_id="job-train", host=host, step=step, kind="progress",
                      message=f"progress: step {step}", time=T0 + timedelta(days=10 * k), code_version="v7")


def _batches(it, size=5000):
    batch = []
    for x in it:
        batch.append(x)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def bulk_storm(db, k: int, sig_id: int, *, hosts: int = STORM_HOSTS) -> None:
    """A storm's event rows and aggregate rows with bulk SQL (the 10M run beyond the first 1M)."""
    from incidentbot.services.ingest import aggregate_key
    from incidentbot.services.sql import sql_time

    rng = random.Random(k)
    start = T0 + timedelta(hours=6 * k)
    vjson = json.dumps(VERSIONS)
    versions = tuple(sorted(VERSIONS.items()))
    with db.write() as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
        mark = "?" if sqlite else "%s"
        now = sql_time(session, datetime.now(timezone.utc))
        events, aggs = [], {}
        run, attempt, job = f"run-{k // 4}", k % 4, f"job-storm{k}"
        bucket = int(start.timestamp() // 30) * 30
        for r in range(hosts * 8):
            t = start + timedelta(seconds=rng.random() * 20)
            host = f"node{r // 8:05}"
            aid = aggregate_key(sig_id, bucket, job, host, None, "v7", versions, run, attempt)
            ts = sql_time(session, t)
            events.append((f"s{k}-{r}", job, WATCHDOG.format(r=r, s=t.second, us=t.microsecond, ms=rng.randrange(1000)),
                           ts, now, "bench", host, str(r % 8), r, 41_000 + k, "v7", vjson, "{}", sig_id, run, attempt, aid))
            a = aggs.get(aid)
            if a is None:
                aggs[aid] = [aid, sig_id, bucket, job, host, None, "v7", vjson, run, attempt, 1, t, t, r, str(r % 8), 41_000 + k, 41_000 + k]
            else:
                a[10] += 1
                if t < a[11]:
                    a[11], a[13] = t, r
                a[12] = max(a[12], t)
                a[14] = "*"
        cols = ("event_id, job_id, message, time, received_at, source, host, gpu, rank, step, code_version, versions, "
                "attributes, signature_id, run, attempt, aggregate_id")
        cur = session.connection().connection.driver_connection.cursor()
        cur.executemany(f"INSERT INTO event ({cols}) VALUES ({', '.join([mark] * 17)})", events)
        rows = [tuple(a[:11]) + (sql_time(session, a[11]), sql_time(session, a[12])) + tuple(a[13:]) for a in aggs.values()]
        cur.executemany("INSERT INTO eventaggregate (id, signature_id, bucket_start, job_id, host, cluster, code_version, "
                        "versions, run, attempt, count, first_time, last_time, first_rank, gpu, min_step, max_step) "
                        f"VALUES ({', '.join([mark] * 17)})", rows)
        cur.close()


def run_size(size: int, backend: str) -> dict:
    from sqlalchemy import func, select

    from incidentbot.models import Event, EventAggregate, Signature
    from incidentbot.runtime import build_runtime
    from incidentbot.settings import load_settings
    from _service import database

    n_storms = max(1, round(size / (STORM_HOSTS * 8)))
    with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp)) as url:
        rt = build_runtime(load_settings(database_url=url, ingest_tokens="t", channel=None, analysis_max_events=0))
        started = time.perf_counter()
        for b in _batches(progress_events()):
            rt.ingest.ingest(b)
        rare = 0
        for b in _batches(rare_events(n_storms)):
            rt.ingest.ingest(b)
            rare += len(b)
        service_storms = min(n_storms, SERVICE_EVENTS // (STORM_HOSTS * 8))
        for k in range(service_storms):
            for b in _batches(storm_events(k)):
                rt.ingest.ingest(b)
        service_s = time.perf_counter() - started
        with rt.db.read() as s:
            sig_id = s.scalar(select(Signature.id).where(Signature.title.like("%atchdog%")).limit(1)) or 1
        started = time.perf_counter()
        for k in range(service_storms, n_storms):
            bulk_storm(rt.db, k, sig_id)
        bulk_s = time.perf_counter() - started
        with rt.db.read() as s:
            events = s.scalar(select(func.count()).select_from(Event))
            rows = s.scalar(select(func.count()).select_from(EventAggregate))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        summary = rt.hypotheses.analyze()
        analyse_s = time.perf_counter() - started
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        # CPU time too: the machine may be shared, wall time then says little.
        analyse_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        rss_peak = cpu1.ru_maxrss / 1024
        # A second run under tracemalloc for the peak of Python allocations (slower, not timed).
        tracemalloc.start()
        rt.hypotheses.analyze()
        _cur, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        with rt.db.read() as s:
            covered = s.scalar(select(func.count()).select_from(Event).where(Event.event_id.like("rare%"),
                                                                              Event.hypothesis_id.is_not(None)))
        rt.db.dispose()
    return {"size": size, "events": events, "rows": rows, "storms": n_storms, "service_storms": service_storms,
            "service_s": service_s, "bulk_s": bulk_s, "analyse_s": analyse_s, "analyse_cpu": analyse_cpu,
            "hypotheses": summary.hypotheses, "rss_before": rss_before, "rss_peak": rss_peak,
            "traced_peak": traced_peak / 2**20, "rare": rare, "rare_covered": covered}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql"))
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child: one size, JSON out
    a = ap.parse_args()
    if a.one:
        print(json.dumps(run_size(a.one, a.backend)))
        return
    print(f"backend {a.backend}; the first {SERVICE_EVENTS:,} events through IngestService.ingest, the rest bulk SQL")
    print("| events stored | storms (service / bulk) | aggregate rows | rows per event | load + analyse | "
          "peak RSS (process) | tracemalloc peak | rare events covered |")
    print("|---|---|---|---|---|---|---|---|")
    for size in (int(x) for x in a.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(size), "--backend", a.backend],
                             capture_output=True, text=True, cwd=ROOT)
        if out.returncode:
            print(out.stderr[-3000:])
            raise SystemExit(out.returncode)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['events']:,} | {r['service_storms']} / {r['storms'] - r['service_storms']} | {r['rows']:,} | "
              f"{r['rows'] / r['events']:.3f} | {r['analyse_s']:.1f} s wall, {r['analyse_cpu']:.1f} s CPU | {r['rss_peak']:.0f} MiB "
              f"(before analysis {r['rss_before']:.0f}) | {r['traced_peak']:.0f} MiB | {r['rare_covered']} of {r['rare']} |",
              flush=True)


if __name__ == "__main__":
    main()
