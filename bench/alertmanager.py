"""One Alertmanager payload of 10,000 dcgm-exporter Xid alerts against a real `serve`, stored in
chunks of the batch cap; the reference is the same 10,000 events posted to /v1/events as two
batches of 5,000, in the same run.

    .venv/bin/python bench/alertmanager.py [--alerts 10000] [--db sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._service import TOKEN, database, service  # noqa: E402
from incidentbot.ingest import from_alertmanager  # noqa: E402


def payload(n: int, tag: str) -> dict:
    return {"version": "4", "status": "firing", "receiver": "incidentbot", "alerts": [
        {"status": "firing", "fingerprint": f"{tag}{i:012x}", "startsAt": "2025-01-20T10:00:00Z",
         "labels": {"alertname": "GpuXidError", "Hostname": f"gpu-node-{i // 8:05d}", "gpu": str(i % 8),
                    "UUID": f"GPU-{i:08x}", "modelName": "NVIDIA H100 80GB HBM3", "err_code": "79",
                    "DCGM_FI_DEV_XID_ERRORS": "79"},
         "annotations": {"summary": f"GPU {i % 8} on gpu-node-{i // 8:05d} reported an Xid error"}}
        for i in range(n)]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=10_000)
    ap.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(args.db, Path(tmp)) as url, service(url) as (base, _proc):
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300)
        body = payload(args.alerts, "a")
        t = time.perf_counter()
        r = client.post("/v1/alertmanager", json=body)
        am = time.perf_counter() - t
        assert r.status_code == 202, r.text
        reply = r.json()
        t = time.perf_counter()
        again = client.post("/v1/alertmanager", json=body).json()
        resend = time.perf_counter() - t
        events = [dict(e, event_id=e["event_id"].replace(":a", ":b", 1)) for e in from_alertmanager(payload(args.alerts, "b"))]
        t = time.perf_counter()
        for i in range(0, len(events), 5000):
            assert client.post("/v1/events", json={"events": events[i:i + 5000]}).status_code == 202
        ref = time.perf_counter() - t
    print(f"database {args.db}; {args.alerts:,} alerts in one payload")
    print(f"  /v1/alertmanager: {am:.2f} s ({args.alerts / am:,.0f} alerts/s), reply {reply}")
    print(f"  same payload again: {resend:.2f} s, reply {again}")
    print(f"  reference /v1/events, same events in batches of 5,000: {ref:.2f} s; ratio {am / ref:.2f}")


if __name__ == "__main__":
    main()
