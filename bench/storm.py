"""A 100,000-rank NCCL watchdog storm against a real `incidentbot serve` in real Slack mode.

    .venv/bin/python bench/storm.py [--events 100000] [--clients 16] [--backends sqlite,postgresql]

The service is its own process, with SLACK_BOT_TOKEN / SLACK_SIGNING_SECRET / SLACK_API_URL pointed
at the local Slack stand-in (incidentbot/localslack) running in this process. Many client threads
post the storm in batches; some batches are retried as if their answer had been lost, others are
sent again later (duplicates). While the storm runs, one thread polls `/healthz` and another sends
signed `/incident signatures top` slash commands; their latencies are recorded. Afterwards the
database is counted (every event exactly once, one signature) and so is the stand-in (one alert
message, edited in place). Prints a Markdown table. `tests/test_reliability_storm.py` runs the
same function with 5,000 events and asserts the same properties.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import ROOT, database, free_port, peak_rss_mib  # noqa: E402

TOKEN = "storm-token"
SECRET = "storm-signing-secret"
WATCHDOG = ("[rank{r}]:[E1206 18:44:12.715298746 ProcessGroupNCCL.cpp:607] [Rank {r}] Watchdog caught collective "
            "operation timeout: WorkNCCL(SeqNum=7753, OpType=ALLREDUCE, NumelIn=544997376, NumelOut=544997376, "
            "Timeout(ms)=600000) ran for 600061 milliseconds before timing out.")


def watchdog_events(n: int, *, job: str = "job-storm", prefix: str = "storm") -> list[dict]:
    return [{"event_id": f"{prefix}-{r}", "job_id": job, "rank": r, "host": f"node{r // 8:05}", "step": 7753,
             "code_version": "v1.4", "versions": {"torch": "2.3.0", "nccl": "2.20.5"}, "message": WATCHDOG.format(r=r)}
            for r in range(n)]


# -- the Slack stand-in and the service process ---------------------------------------------------

@dataclass
class SlackStandIn:
    ws: object
    server: object
    channel: str

    def top_level(self) -> list[dict]:
        return self.ws.messages(self.channel)

    def everything(self) -> list[dict]:
        return self.ws.messages(self.channel, include_replies=True)


@contextmanager
def slack_standin():
    from incidentbot.localslack import Workspace, run_in_thread

    ws = Workspace()
    channel = ws.create_channel("gpu-incidents")
    for name in ("alice", "bob"):
        ws.add_user(name, user_id=f"U{name.upper()}")
    server = run_in_thread(ws)
    try:
        yield SlackStandIn(ws, server, channel)
    finally:
        server.stop()


class Service:
    """`incidentbot serve` as a subprocess in real Slack mode; restartable on the same port."""

    def __init__(self, db_url: str, slack: SlackStandIn | None, *, workers: str = "on", env: dict | None = None,
                 port: int | None = None):
        self.db_url, self.slack, self.workers = db_url, slack, workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = env or {}
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile("w+", prefix="incidentbot-reliability-", suffix=".log", delete=False)

    def env(self) -> dict:
        env = dict(os.environ, INCIDENTBOT_DATABASE_URL=self.db_url,
                   INCIDENTBOT_INGEST_TOKENS=f"{TOKEN},alertmanager:am-{TOKEN}",
                   INCIDENTBOT_WORKERS=self.workers, INCIDENTBOT_SCHEDULER="off", INCIDENTBOT_LOG_LEVEL="WARNING",
                   INCIDENTBOT_ALERT_UPDATE_SECONDS="2")
        for k in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "INCIDENTBOT_CHANNEL"):
            env.pop(k, None)
        if self.slack is not None:
            env.update(SLACK_BOT_TOKEN=self.slack.ws.bot_token, SLACK_SIGNING_SECRET=SECRET,
                       SLACK_API_URL=self.slack.server.api_url, INCIDENTBOT_CHANNEL=self.slack.channel)
        env.update(self.extra)
        return env

    def start(self, timeout: float = 60) -> "Service":
        self.proc = subprocess.Popen([sys.executable, "-m", "incidentbot", "serve", "--port", str(self.port), "--no-demo"],
                                     env=self.env(), cwd=ROOT, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("service did not start: " + self.log_text()[-3000:])
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as when the kernel's OOM killer or a node loss strikes."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def db_counts(db_url: str) -> dict:
    from incidentbot.models import Event, Outbox, Signature

    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            return {
                "events": c.scalar(select(func.count()).select_from(Event)),
                "distinct_ids": c.scalar(select(func.count(func.distinct(Event.event_id)))),
                "signatures": c.scalar(select(func.count()).select_from(Signature).where(Signature.merged_into.is_(None))),
                "signature_count_sum": int(c.scalar(select(func.coalesce(func.sum(Signature.count), 0)))),
                "outbox_open": c.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "pending")),
                "outbox_failed": c.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "failed")),
            }
    finally:
        engine.dispose()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


# -- the storm ------------------------------------------------------------------------------------

@dataclass
class StormResult:
    events: int
    seconds: float
    accepted: int = 0
    duplicates: int = 0
    resent: int = 0
    retries: int = 0
    health_ms: list[float] = field(default_factory=list)
    health_failures: int = 0
    command_ms: list[float] = field(default_factory=list)
    command_failures: int = 0
    peak_rss_mib: float = 0.0
    counts: dict = field(default_factory=dict)
    top_level_messages: int = 0
    alert_edits: int = 0
    alert_shows_total: bool = False
    settle_seconds: float = 0.0


def post_batch(client: httpx.Client, batch: list[dict], stats: dict, lock: threading.Lock, *, attempts: int = 30) -> dict:
    """Post until a 202; connection errors, timeouts and 5xx are retried with back-off."""
    delay = 0.1
    for _ in range(attempts):
        try:
            r = client.post("/v1/events", json={"events": batch})
            if r.status_code == 202:
                return r.json()
            if r.status_code < 500 and r.status_code != 429:
                raise RuntimeError(f"refused {r.status_code}: {r.text[:300]}")
        except httpx.TransportError:
            pass
        with lock:
            stats["retries"] += 1
        time.sleep(delay)
        delay = min(2.0, delay * 2)
    raise RuntimeError("batch not accepted after retries")


def run_storm(db_url: str, slack: SlackStandIn, *, events: int = 100_000, clients: int = 16, batch: int = 500,
              lost_answer_rate: float = 0.05, resend_rate: float = 0.05, seed: int = 7, settle_timeout: float = 120,
              probe_interval: float = 0.1) -> StormResult:
    from incidentbot.localslack import SlackSimulator

    rng = random.Random(seed)
    evs = watchdog_events(events)
    batches = [evs[i:i + batch] for i in range(0, len(evs), batch)]
    # Lost answers: the client sends, the answer never arrives (a short client timeout would do
    # the same), so it sends again at once. Re-sends: a later duplicate of a whole batch.
    lost = {i for i in range(len(batches)) if rng.random() < lost_answer_rate}
    resend = [i for i in range(len(batches)) if rng.random() < resend_rate]
    work = [(i, i in lost) for i in range(len(batches))] + [(i, False) for i in resend]
    rng.shuffle(work)
    stats = {"accepted": 0, "duplicates": 0, "retries": 0}
    lock = threading.Lock()
    done = threading.Event()
    res = StormResult(events=events, seconds=0.0, resent=sum(len(batches[i]) for i in resend) + sum(len(batches[i]) for i in lost))

    with Service(db_url, slack) as svc:
        sim = SlackSimulator(slack.ws, bot_url=f"{svc.url}/slack/events", signing_secret=SECRET, localslack_url=slack.server.url)

        def health_probe():
            with httpx.Client(timeout=10) as c:
                while not done.is_set():
                    t = time.perf_counter()
                    try:
                        ok = c.get(svc.url + "/healthz").status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    res.health_ms.append((time.perf_counter() - t) * 1000)
                    res.health_failures += not ok
                    time.sleep(probe_interval)

        def command_probe():
            while not done.is_set():
                t = time.perf_counter()
                try:
                    r = sim.slash_command("/incident", "signatures top", user="UBOB", channel=slack.channel)
                    ok = r.status == 200
                except Exception:  # noqa: BLE001 - a failure is counted, not raised
                    ok = False
                res.command_ms.append((time.perf_counter() - t) * 1000)
                res.command_failures += not ok
                time.sleep(probe_interval * 3)

        local = threading.local()

        def client() -> httpx.Client:
            if not hasattr(local, "c"):
                local.c = httpx.Client(base_url=svc.url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"})
            return local.c

        def send(item):
            i, lose = item
            out = post_batch(client(), batches[i], stats, lock)
            if lose:  # the first answer is "lost": the client retries the same batch
                again = post_batch(client(), batches[i], stats, lock)
                out = {"accepted": out["accepted"] + again["accepted"], "duplicates": out["duplicates"] + again["duplicates"]}
            with lock:
                stats["accepted"] += out["accepted"]
                stats["duplicates"] += out["duplicates"]

        probes = [threading.Thread(target=health_probe, daemon=True), threading.Thread(target=command_probe, daemon=True)]
        for p in probes:
            p.start()
        started = time.perf_counter()
        try:
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(send, work))
        finally:
            res.seconds = time.perf_counter() - started
            done.set()
            for p in probes:
                p.join(30)
        res.accepted, res.duplicates, res.retries = stats["accepted"], stats["duplicates"], stats["retries"]

        # Let the workers settle: the alert shows the whole storm and nothing is left to send.
        t0 = time.perf_counter()
        total = f"{events:,}"
        deadline = time.monotonic() + settle_timeout
        while time.monotonic() < deadline:
            msgs = slack.top_level()
            shown = bool(msgs) and any(total in str(m.get("blocks")) for m in msgs)
            if shown and db_counts(db_url)["outbox_open"] == 0:
                res.alert_shows_total = True
                break
            time.sleep(0.25)
        res.settle_seconds = time.perf_counter() - t0
        res.peak_rss_mib = peak_rss_mib(svc.proc.pid)
        sim.close()
    res.counts = db_counts(db_url)
    msgs = slack.top_level()
    res.top_level_messages = len(msgs)
    res.alert_edits = slack.ws.edit_count(slack.channel, msgs[0]["ts"]) if msgs else 0
    return res


def table(rows: list[tuple[str, StormResult]]) -> str:
    out = ["| backend | events (+ re-sent) | time | stored rows / distinct | signatures | alert messages / edits "
           "| /healthz p50 / p99 | slash ack p50 / p99 | peak RSS |", "|---|---|---|---|---|---|---|---|---|"]
    for kind, r in rows:
        out.append(
            f"| {kind} | {r.events:,} (+{r.resent:,}, {r.retries} retried) | {r.seconds:.1f} s ({r.accepted / r.seconds:,.0f}/s) "
            f"| {r.counts['events']:,} / {r.counts['distinct_ids']:,} | {r.counts['signatures']} "
            f"| {r.top_level_messages} / {r.alert_edits} | {pct(r.health_ms, 50):.0f} / {pct(r.health_ms, 99):.0f} ms "
            f"({len(r.health_ms)} probes, {r.health_failures} failed) "
            f"| {pct(r.command_ms, 50):.0f} / {pct(r.command_ms, 99):.0f} ms ({len(r.command_ms)}, {r.command_failures} failed) "
            f"| {r.peak_rss_mib:.0f} MiB |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--backends", default="sqlite,postgresql")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in a.backends.split(","):
            with database(kind, Path(tmp)) as url, slack_standin() as slack:
                r = run_storm(url, slack, events=a.events, clients=a.clients, batch=a.batch)
                rows.append((kind, r))
                print(f"{kind}: accepted {r.accepted:,}, duplicates {r.duplicates:,}, settled in {r.settle_seconds:.1f} s, "
                      f"alert shows total: {r.alert_shows_total}, counts {r.counts}", file=sys.stderr)
    print(table(rows))


if __name__ == "__main__":
    main()
