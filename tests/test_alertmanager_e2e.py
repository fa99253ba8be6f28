"""The real Alertmanager (Debian's prometheus-alertmanager, with amtool) sending its webhook to a
real ``incidentbot serve`` on loopback: fire, re-fire, resolve and re-fire alerts labelled as
dcgm-exporter and node-exporter label them, then count events and signatures.

Alertmanager runs with its cluster listener off (``--cluster.listen-address=``), on loopback
only, with short group_wait/group_interval so a change is sent within about a second."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.served import Served, free_port

pytestmark = pytest.mark.slow

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
AMTOOL = shutil.which("amtool")
if not (ALERTMANAGER and AMTOOL):
    pytest.skip(
        "needs Debian's prometheus-alertmanager (alertmanager and amtool): apt-get install prometheus-alertmanager",
        allow_module_level=True,
    )

READ = {"Authorization": "Bearer test-token"}
DCGM_A = [
    "alertname=GpuXidError",
    "Hostname=gpu-node-17",
    "gpu=3",
    "UUID=GPU-1f027ee8-6e1e-2b8c-0108-3d370e5f0418",
    "modelName=NVIDIA H100 80GB HBM3",
    "err_code=79",
    "DCGM_FI_DEV_XID_ERRORS=79",
    "instance=10.42.3.17:9400",
]
DCGM_B = [
    "alertname=GpuXidError",
    "Hostname=gpu-node-18",
    "gpu=5",
    "UUID=GPU-2a2b",
    "modelName=NVIDIA H100 80GB HBM3",
    "err_code=79",
    "DCGM_FI_DEV_XID_ERRORS=79",
    "instance=10.42.3.18:9400",
]
NODE_C = ["alertname=NodeFilesystemError", "instance=gpu-node-20:9100", "nodename=gpu-node-20", "job=node"]

CONFIG = """
route:
  receiver: incidentbot
  group_by: ['cluster']
  group_wait: 200ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: incidentbot
    webhook_configs:
      - url: {url}/v1/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: am-token
"""


def _rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Alertmanager:
    def __init__(self, folder, receiver_url: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (folder / "alertmanager.yml").write_text(CONFIG.format(url=receiver_url))
        self.log = (folder / "alertmanager.log").open("wb")
        self.proc = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={folder / 'alertmanager.yml'}",
                f"--storage.path={folder / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.folder = folder

    def __enter__(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=2)
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.2)
        self.__exit__()
        pytest.fail("Alertmanager did not become ready: " + (self.folder / "alertmanager.log").read_text()[-2000:])

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def add(self, labels: list[str], *, summary: str, start: datetime, end: datetime | None = None) -> None:
        args = [
            AMTOOL,
            "alert",
            "add",
            *labels,
            f"--annotation=summary={summary}",
            f"--start={_rfc3339(start)}",
            f"--alertmanager.url={self.url}",
        ]
        if end is not None:
            args.append(f"--end={_rfc3339(end)}")
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr


def _metric(served: Served, outcome: str) -> float:
    text = httpx.get(f"{served.url}/metrics", timeout=10).text
    m = re.search(rf'^incidentbot_events_total{{outcome="{outcome}",source="alertmanager"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def _wait(predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def test_real_alertmanager_fire_refire_resolve_refire(tmp_path):
    with Served(tmp_path) as served, Alertmanager(tmp_path, served.url) as am:

        def events():
            return httpx.get(f"{served.url}/v1/events", headers=READ, timeout=10).json()["events"]

        def signatures():
            return httpx.get(f"{served.url}/v1/signatures", headers=READ, timeout=10).json()["signatures"]

        t0 = datetime.now(timezone.utc) - timedelta(seconds=5)
        # 1. Fire: one dcgm-exporter Xid alert.
        am.add(DCGM_A, summary="GPU 3 on gpu-node-17 reported an Xid error", start=t0)
        _wait(lambda: len(events()) == 1, "the first alert to be stored")

        # 2. Re-fire it (amtool again, same start) and fire the same Xid on another host: the group
        #    is sent again with both alerts; the first is a duplicate.
        am.add(DCGM_A, summary="GPU 3 on gpu-node-17 reported an Xid error", start=t0)
        am.add(DCGM_B, summary="GPU 5 on gpu-node-18 reported an Xid error", start=t0)
        _wait(lambda: len(events()) == 2 and _metric(served, "duplicate") >= 1, "the re-fired group")

        # 3. Resolve the first: a resolved notification ends it and stores nothing.
        am.add(
            DCGM_A,
            summary="GPU 3 on gpu-node-17 reported an Xid error",
            start=t0,
            end=datetime.now(timezone.utc) - timedelta(seconds=1),
        )
        _wait(lambda: _metric(served, "resolved") >= 1, "the resolved notification")
        assert len(events()) == 2

        # 4. Re-fire it (a new firing: a new start) and fire a node-exporter alert.
        t1 = datetime.now(timezone.utc)
        am.add(DCGM_A, summary="GPU 3 on gpu-node-17 reported an Xid error", start=t1)
        am.add(NODE_C, summary="Filesystem /data on gpu-node-20 has I/O errors", start=t1)
        stored = _wait(
            lambda: (lambda e: e if len(e) == 4 else None)(events()), "the re-fired alert and the node alert"
        )

        sigs = signatures()
        by_category = sorted((s["category"], s["count"]) for s in sigs)
        assert len(sigs) == 2, sigs
        assert ("xid", 3) in by_category
        xid = next(s for s in sigs if s["category"] == "xid")
        assert xid["title"].startswith("Xid 79:"), xid
        assert all(s["count"] > 0 for s in sigs)
        detail = {e["event_id"]: e for e in stored}
        hosts = sorted(e.get("host") for e in detail.values())
        assert hosts == ["gpu-node-17", "gpu-node-17", "gpu-node-18", "gpu-node-20"]
        assert sorted(e.get("gpu") or "" for e in detail.values()) == ["", "GPU3", "GPU3", "GPU5"]
