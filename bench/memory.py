"""Memory as deployed: RSS of one `incidentbot serve` with the default background workers and
scheduler on, in Slack mode (the local Slack stand-in plays Slack), while ~1M events arrive, then
after an analysis. With --reference, the same run with the workers off (what docs/operations.md
used to quote), so the two are compared in one process on the same machine.

    .venv/bin/python bench/memory.py [--events 1000000] [--backend sqlite|postgresql] [--reference]

Prints a Markdown table per run: events stored, RSS, peak RSS (VmHWM), events/s over the step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import TOKEN, database, peak_rss_mib, rss_mib, service  # noqa: E402
from ingest import make_events, post_all  # noqa: E402

from incidentbot.localslack import Workspace, run_in_thread  # noqa: E402

SECRET = "bench-secret"


class Sampler:
    """RSS every 0.5 s in a thread: the highest seen, beside the kernel's own peak (VmHWM)."""

    def __init__(self, pid: int):
        self.pid, self.high = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.5):
            try:
                self.high = max(self.high, rss_mib(self.pid))
            except OSError:
                return

    def stop(self):
        self._stop.set()
        self._thread.join()


def run(*, backend: str, events: int, step: int, workers: str, clients: int) -> dict:
    ws = Workspace()
    channel = ws.create_channel("incidents")
    slack = run_in_thread(ws)
    env = {"SLACK_BOT_TOKEN": ws.bot_token, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.api_url,
           "INCIDENTBOT_CHANNEL": channel, "INCIDENTBOT_SCHEDULER": workers}
    out = {}
    print(f"\n### {backend}, workers {workers}\n")
    print("| events stored | RSS | peak RSS | events/s over the step |")
    print("|---|---|---|---|")
    try:
        with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp)) as url, \
                service(url, workers=workers, extra_env=env) as (base, proc):
            sampler = Sampler(proc.pid)
            out["start"] = rss_mib(proc.pid)
            for start in range(0, events, step):
                # new jobs, hosts and texts all along: the worst case for the caches
                batch = make_events(min(step, events - start), storm=False, prefix=f"m{start}", seed=start + 3)
                for e in batch:
                    e["job_id"] = f"{e['job_id']}-{start // step}"
                secs, acc, _dup = post_all(base, batch, clients=clients)
                print(f"| {start + acc:,} | {rss_mib(proc.pid):.0f} MiB | {peak_rss_mib(proc.pid):.0f} MiB | {acc / secs:,.0f} |",
                      flush=True)
            out["after_ingest"] = rss_mib(proc.pid)
            if workers == "on":
                time.sleep(15)  # the background analysis is due once ingest has been quiet for 10 s
            t = time.perf_counter()
            r = httpx.post(f"{base}/v1/analyze", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=1800)
            r.raise_for_status()
            out["analysis_s"] = time.perf_counter() - t
            time.sleep(5)  # let the announcements of new hypotheses go out
            out["after_analysis"] = rss_mib(proc.pid)
            out["peak"] = max(peak_rss_mib(proc.pid), sampler.high)
            sampler.stop()
            print(f"| after analysis ({r.json()['events']:,} events, {out['analysis_s']:.0f} s) | "
                  f"{out['after_analysis']:.0f} MiB | {out['peak']:.0f} MiB | |", flush=True)
            out["posts"] = ws.call_count("chat.postMessage")
    finally:
        slack.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--step", type=int, default=250_000)
    ap.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--reference", action="store_true", help="also run with the background workers off")
    a = ap.parse_args()
    deployed = run(backend=a.backend, events=a.events, step=a.step, workers="on", clients=a.clients)
    print(f"\nas deployed: start {deployed['start']:.0f} MiB, after {a.events:,} events {deployed['after_ingest']:.0f} MiB, "
          f"after analysis {deployed['after_analysis']:.0f} MiB, peak {deployed['peak']:.0f} MiB "
          f"({deployed['posts']} Slack posts)")
    if a.reference:
        ref = run(backend=a.backend, events=a.events, step=a.step, workers="off", clients=a.clients)
        print(f"workers off: after {a.events:,} events {ref['after_ingest']:.0f} MiB, after analysis "
              f"{ref['after_analysis']:.0f} MiB, peak {ref['peak']:.0f} MiB; "
              f"as deployed / workers off: peak ×{deployed['peak'] / ref['peak']:.2f}")


if __name__ == "__main__":
    main()
