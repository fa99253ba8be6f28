"""``incidentbot serve --demo``: feed a simulated incident into the local console.

A background thread sends a simulated scenario over the real ingest API (``POST /v1/events``
with the per-process console token) at a pace a person can watch — a few batches a second for
about a minute and a half, event times shifted so the scenario ends now — and asks for an
analysis (``POST /v1/analyze``) along the way and at the end, so hypotheses form while you watch.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from incidentbot.simulate import simulate

__all__ = ["DemoTask", "start_demo", "demo_events"]

log = logging.getLogger(__name__)

DEMO_SEED = 7
DEMO_SECONDS = 90.0
BATCH_INTERVAL = 0.3
ANALYZE_EVERY = 0.25  # of the scenario


def _fallback_events() -> list[dict[str, Any]]:
    """A tiny scenario for when the simulator is not available: one bad GPU, one NCCL storm."""
    base = datetime(2026, 11, 2, tzinfo=UTC)
    out = []
    for i in range(60):
        t = base + timedelta(minutes=7 * i)
        host, gpu = f"c1-gpu{(i % 8):04d}", f"GPU{i % 8}"
        if i % 3 == 0:
            msg = f"NVRM: Xid (PCI:0000:17:00): 79, pid={4000 + i}, GPU has fallen off the bus."
            host, gpu, kind = "c1-gpu0003", "GPU3", "crash"
        elif i % 3 == 1:
            msg = (
                f"[rank{i}]:[E ProcessGroupNCCL.cpp:616] [Rank {i}] Watchdog caught collective operation timeout: "
                f"WorkNCCL(SeqNum={1000 + i}, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for "
                f"{600000 + i * 17} milliseconds before timing out."
            )
            kind = "hang"
        else:
            msg = "RuntimeError: CUDA error: an illegal memory access was encountered"
            host, gpu, kind = "c1-gpu0003", "GPU3", "crash"
        out.append(
            {
                "event_id": f"demo-{i:05d}",
                "job_id": f"c1-run{i % 3:03d}",
                "message": msg,
                "time": t.isoformat().replace("+00:00", "Z"),
                "cluster": "c1",
                "host": host,
                "gpu": gpu,
                "rank": i % 64,
                "step": 1000 + 150 * i,
                "code_version": "v1.4",
                "versions": {"torch": "2.3.0", "nccl": "2.20.5"},
                "kind": kind,
            }
        )
    # progress lines: every host ran the jobs, so one host failing stands out
    for i in range(96):
        t = base + timedelta(minutes=4 * i + 1)
        step = 1000 + 100 * i
        out.append(
            {
                "event_id": f"demo-p{i:05d}",
                "job_id": f"c1-run{i % 3:03d}",
                "message": f"[default0]: iteration {step:>8}/ 20000 | lm loss: 2.31E+00 | grad norm: 0.21 |",
                "time": t.isoformat().replace("+00:00", "Z"),
                "cluster": "c1",
                "host": f"c1-gpu{i % 8:04d}",
                "gpu": "GPU0",
                "rank": (i % 8) * 8,
                "step": step,
                "code_version": "v1.4",
                "versions": {"torch": "2.3.0", "nccl": "2.20.5"},
                "kind": "progress",
            }
        )
    out.sort(key=lambda e: str(e["time"]))  # ISO times in UTC: text order is time order
    return out


def demo_events(seed: int = DEMO_SEED, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """The demo's events (simulated, or the inline fallback), shifted so the last one is `now`."""
    try:
        events = [dict(e) for e in simulate(seed, size="small").events]
    except Exception:  # noqa: BLE001 - the simulator is optional for the demo
        log.warning("scenario simulator unavailable; the demo uses a tiny built-in scenario", exc_info=True)
        events = _fallback_events()
    if not events:
        return events
    now = now or datetime.now(UTC)

    def parse(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    last = max(parse(e["time"]) for e in events)
    shift = now - last
    for e in events:
        e["time"] = (parse(e["time"]) + shift).astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return events


class DemoTask:
    """The feeding thread; `stop()` ends it (and waits briefly)."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None,
        events: list[dict[str, Any]],
        seconds: float = DEMO_SECONDS,
        interval: float = BATCH_INTERVAL,
    ):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.events = events
        self.seconds = seconds
        self.interval = interval
        self.sent = 0
        self.analyses = 0
        self.error: str | None = None
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="incidentbot-demo", daemon=True)

    def start(self) -> DemoTask:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _wait_ready(self, http: httpx.Client) -> bool:
        deadline = time.monotonic() + 30
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if http.get(f"{self.base_url}/healthz").status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            self._stop.wait(0.2)
        return False

    def _analyze(self, http: httpx.Client) -> None:
        try:
            r = http.post(f"{self.base_url}/v1/analyze", headers=self._headers())
            if r.status_code == 200:
                self.analyses += 1
            else:
                log.warning("demo: analyze answered %s: %s", r.status_code, r.text[:200])
        except httpx.HTTPError as exc:
            log.warning("demo: analyze failed: %s", exc)

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=60.0) as http:
                if not self._wait_ready(http):
                    return
                n = len(self.events)
                batches = max(1, int(self.seconds / self.interval))
                size = max(1, -(-n // batches))
                next_analyze = ANALYZE_EVERY
                log.info("demo: feeding %d simulated events in batches of %d", n, size)
                for start in range(0, n, size):
                    if self._stop.is_set():
                        return
                    began = time.monotonic()
                    batch = self.events[start : start + size]
                    r = http.post(f"{self.base_url}/v1/events", json={"events": batch}, headers=self._headers())
                    if r.status_code != 202:
                        self.error = f"ingest answered {r.status_code}: {r.text[:300]}"
                        log.warning("demo: %s", self.error)
                        return
                    self.sent += len(batch)
                    if self.sent / n >= next_analyze and self.sent < n:
                        self._analyze(http)
                        next_analyze += ANALYZE_EVERY
                    self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))
                if not self._stop.is_set():
                    self._analyze(http)
                    log.info("demo: done, %d events sent", self.sent)
        except Exception as exc:  # noqa: BLE001 - a demo must never take the service down
            self.error = str(exc)
            log.exception("demo feeder failed")
        finally:
            self.finished.set()


def start_demo(
    rt,
    *,
    port: int,
    token: str | None = None,
    seconds: float = DEMO_SECONDS,
    interval: float = BATCH_INTERVAL,
    seed: int = DEMO_SEED,
) -> DemoTask:
    """Start feeding the demo scenario to the service on 127.0.0.1:`port`, sending with ``token``
    (the console's own feeder token when the console is mounted)."""
    if token is None:  # the console is not mounted: use a configured token that may send events
        token = next((t for t, src in rt.settings.token_sources().items() if src in (None, "events")), None)
    return DemoTask(
        base_url=f"http://127.0.0.1:{port}", token=token, events=demo_events(seed), seconds=seconds, interval=interval
    ).start()
