"""Flood bench: unique-text events at a steady rate through the real API of a `serve` process.

    .venv/bin/python bench/flood.py [--events 200000] [--step 20000] [--backend sqlite|postgresql]

A job that prints unique text (random words, a dump per step) makes a new signature per line.
Per step of ``--step`` such events this prints the ingest rate, the median batch latency, the
signatures known, the Slack posts queued (alerts and roll-ups), the outbox's rows and the
server's RSS. The reference is the same number of events of one repeated text, sent to the same
kind of server first in the same run: the ratio says what the novelty itself costs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import TOKEN, database, rss_mib, service  # noqa: E402

BATCH = 500


def unique_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 10))) for _ in range(20000)]
    return [" ".join(rng.choices(words, k=rng.randint(4, 9))) for _ in range(n)]


def send(c: httpx.Client, events: list[dict]) -> float:
    body = json.dumps({"events": events}).encode()
    t0 = time.perf_counter()
    r = c.post("/v1/events", content=body)
    if r.status_code != 202:
        raise RuntimeError(f"{r.status_code}: {r.text[:300]}")
    return time.perf_counter() - t0


def counts(db_url: str) -> tuple[int, int, int, int]:
    eng = create_engine(db_url)
    try:
        with eng.connect() as c:
            sigs = c.execute(text("SELECT count(*) FROM signature")).scalar_one()
            posts = c.execute(text("SELECT count(*) FROM outbox WHERE op = 'post'")).scalar_one()
            rows = c.execute(text("SELECT count(*) FROM outbox")).scalar_one()
            rolled = c.execute(text("SELECT coalesce(sum(rolled), 0) FROM newsignaturequota")).scalar_one()
    finally:
        eng.dispose()
    return sigs, posts, rows, rolled


def run(a, *, label: str, texts: list[str]) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory() as tmp, database(a.backend, Path(tmp)) as url, \
            service(url, extra_env={"INCIDENTBOT_CHANNEL": "C0FLOOD"}) as (base, proc), \
            httpx.Client(base_url=base, timeout=120, headers={"Authorization": f"Bearer {TOKEN}",
                                                               "Content-Type": "application/json"}) as c:
        sent = 0
        for step_start in range(0, len(texts), a.step):
            lat = []
            t0 = time.perf_counter()
            for i in range(step_start, min(step_start + a.step, len(texts)), BATCH):
                lat.append(send(c, [{"event_id": f"{label}-{k}", "job_id": f"job-{k % a.jobs}", "message": texts[k],
                                     "host": f"node{k % 512:03d}", "rank": k % 4096}
                                    for k in range(i, min(i + BATCH, len(texts)))]))
            dt = time.perf_counter() - t0
            sent = min(step_start + a.step, len(texts))
            sigs, posts, rows, rolled = counts(url)
            out.append({"events": sent, "rate": (sent - step_start) / dt, "p50": statistics.median(lat),
                        "max": max(lat), "signatures": sigs, "posts": posts, "outbox": rows, "rolled": rolled,
                        "rss": rss_mib(proc.pid)})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--step", type=int, default=20_000)
    ap.add_argument("--jobs", type=int, default=8, help="job ids the flood is spread over")
    ap.add_argument("--backend", default="sqlite")
    a = ap.parse_args(argv)
    ref = run(a, label="ref", texts=["RuntimeError: CUDA error: an illegal memory access was encountered"] * a.events)
    flood = run(a, label="flood", texts=unique_texts(a.events, seed=1))
    print(f"flood of {a.events:,} unique texts over {a.jobs} jobs, batches of {BATCH}, one `serve` process, {a.backend}")
    hdr = (f"{'events':>9}{'ev/s':>8}{'ref ev/s':>9}{'ratio':>7}{'p50 s':>7}{'max s':>7}{'signatures':>11}"
           f"{'posts':>7}{'rolled up':>10}{'outbox':>8}{'RSS MiB':>8}")
    print(hdr)
    print("-" * len(hdr))
    for f, r in zip(flood, ref):
        print(f"{f['events']:>9,}{f['rate']:>8,.0f}{r['rate']:>9,.0f}{f['rate'] / r['rate']:>7.2f}{f['p50']:>7.2f}"
              f"{f['max']:>7.2f}{f['signatures']:>11,}{f['posts']:>7,}{f['rolled']:>10,}{f['outbox']:>8,}{f['rss']:>8.0f}")
    first, last = flood[0], flood[-1]
    print(f"rate, last step / first step: {last['rate'] / first['rate']:.2f}; RSS {first['rss']:.0f} -> {last['rss']:.0f} MiB; "
          f"{last['posts']:,} Slack posts queued for {last['signatures']:,} signatures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
