"""The other ways in: the reporter, Alertmanager, torchelastic error files, and the ingest CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from incidentbot.ingest import from_alertmanager, from_torchelastic
from incidentbot.reporter import Reporter, environment_context
from tests.conftest import ROOT

AM_PAYLOAD = {
    "version": "4",
    "groupKey": '{}:{alertname="GpuXid"}',
    "status": "firing",
    "receiver": "incidentbot",
    "groupLabels": {"alertname": "GpuXid"},
    "commonLabels": {"alertname": "GpuXid", "cluster": "c1"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "GpuXid", "instance": "c1-gpu0007:9400", "gpu": "3", "job_id": "run-42"},
            "annotations": {"summary": "NVRM: Xid (PCI:0000:91:00): 79, pid=1896, GPU has fallen off the bus."},
            "startsAt": "2025-01-20T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prom/graph",
            "fingerprint": "a1b2c3",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "GpuXid", "instance": "c1-gpu0008:9400"},
            "annotations": {"summary": "old"},
            "startsAt": "2025-01-20T09:00:00Z",
            "fingerprint": "ffff",
        },
    ],
}


def test_environment_context_from_torchrun_and_slurm():
    ctx = environment_context(
        {
            "TORCHELASTIC_RUN_ID": "run-7",
            "RANK": "13",
            "LOCAL_RANK": "5",
            "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,6,7",
            "SLURMD_NODENAME": "node017",
        }
    )
    assert ctx == {"job_id": "run-7", "rank": 13, "host": "node017", "gpu": "6"}
    ctx = environment_context({"SLURM_JOB_ID": "991", "SLURM_PROCID": "2", "SLURM_LOCALID": "2", "HOSTNAME": "n1"})
    assert ctx["job_id"] == "991" and ctx["rank"] == 2 and ctx["gpu"] == "2"


def test_reporter_against_the_real_service(live_server, runtime):
    reporter = Reporter(
        live_server.url,
        "test-token",
        env={"TORCHELASTIC_RUN_ID": "run-9", "RANK": "3", "HOSTNAME": "h9"},
        code_version="v1.2",
        versions={"torch": "2.3.0"},
    )
    try:
        1 / 0
    except ZeroDivisionError as exc:
        assert reporter.report_exception(exc, step=1200) is True
    with pytest.raises(ValueError):
        with reporter.guard(step=lambda: 1300):
            raise ValueError("loss is nan")
    events = httpx.get(f"{live_server.url}/v1/events", headers={"Authorization": "Bearer test-token"}).json()["events"]
    assert len(events) == 2
    first = events[0]
    assert first["job_id"] == "run-9" and first["rank"] == 3 and first["host"] == "h9" and first["step"] == 1200
    assert (
        first["code_version"] == "v1.2"
        and first["versions"] == {"torch": "2.3.0"}
        and "ZeroDivisionError" in first["message"]
    )
    assert events[1]["step"] == 1300 and "loss is nan" in events[1]["message"]


def test_reporter_never_raises_when_the_service_is_down_or_refuses(live_server):
    down = Reporter("http://127.0.0.1:9", "t", retries=1, timeout=0.5, env={})
    assert down.report("boom") is False
    refused = Reporter(live_server.url, "wrong-token", retries=0, env={})
    assert refused.report("boom") is False


def test_reporter_retries_5xx_with_one_event_id():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content)["events"][0]["event_id"])
        return httpx.Response(503) if len(seen) < 3 else httpx.Response(202, json={"accepted": 1, "duplicates": 0})

    r = Reporter("http://svc", "t", transport=httpx.MockTransport(handler), env={})
    assert r.report("x") is True
    assert len(seen) == 3 and len(set(seen)) == 1


def test_alertmanager_conversion_and_webhook(client):
    events = from_alertmanager(AM_PAYLOAD)
    assert events.skipped_resolved == 1
    assert events[0]["host"] == "c1-gpu0007" and events[0]["gpu"] == "GPU3" and events[0]["job_id"] == "run-42"
    assert events[0]["cluster"] == "c1" and events[0]["event_id"] == "am:a1b2c3:2025-01-20T10:00:00Z"
    headers = {"Authorization": "Bearer am-token"}
    r = client.post("/v1/alertmanager", json=AM_PAYLOAD, headers=headers)
    assert r.status_code == 202 and r.json() == {"accepted": 1, "duplicates": 0, "resolved_skipped": 1, "batches": 1}
    assert client.post("/v1/alertmanager", json=AM_PAYLOAD, headers=headers).json()["duplicates"] == 1
    sig = client.get("/v1/signatures").json()["signatures"][0]
    assert sig["category"] == "xid" and "79" in sig["title"]
    assert client.post("/v1/alertmanager", json={"version": "3", "alerts": []}, headers=headers).status_code == 422
    # An events-only token cannot post alerts and vice versa is fine for a general token.
    assert (
        client.post("/v1/events", json={"events": [{"job_id": "j", "message": "m"}]}, headers=headers).status_code
        == 403
    )


def test_torchelastic_error_file():
    data = {
        "message": {
            "message": "RuntimeError: CUDA error: an illegal memory access was encountered",
            "extraInfo": {
                "py_callstack": 'Traceback (most recent call last):\n  File "train.py", line 10, in <module>\n    main()\nRuntimeError: CUDA error: an illegal memory access was encountered',
                "timestamp": "1700000000",
            },
        },
        "errorCode": 1,
    }
    ev = from_torchelastic(json.dumps(data), job_id="run-1", rank=4, host="h1")
    assert ev["job_id"] == "run-1" and ev["rank"] == 4 and ev["time"].startswith("2023-11-14")
    assert ev["message"].startswith("Traceback") and ev["message"].count("illegal memory access") == 1
    with pytest.raises(ValueError):
        from_torchelastic("{}", job_id="x")


def test_ingest_cli_into_database_and_over_http(tmp_path, db_url, live_server):
    lines = [
        json.dumps({"event_id": f"c{i}", "job_id": "cli", "message": "torch.OutOfMemoryError: CUDA out of memory."})
        for i in range(5)
    ]
    lines.insert(2, "{not json")
    lines.append(json.dumps({"job_id": "cli"}))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    env = {"INCIDENTBOT_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "incidentbot", "ingest", str(path)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert out.returncode == 2
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "accepted": 5,
        "duplicates": 0,
        "rejected": 2,
        "skipped": 0,
    }
    assert "line 3: not JSON" in out.stderr and "line 7: message" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "incidentbot", "ingest", "-", "--url", live_server.url, "--token", "test-token"],
        input="\n".join(lines[:2]) + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "accepted": 0,
        "duplicates": 2,
        "rejected": 0,
        "skipped": 0,
    }


def test_settings_errors_name_the_variable(tmp_path):
    env = {"INCIDENTBOT_DATABASE_URL": "mysql://nope", "INCIDENTBOT_TZ": "Mars/Olympus", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "incidentbot", "hypotheses"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 2
    assert "INCIDENTBOT_DATABASE_URL" in out.stderr and "INCIDENTBOT_TZ" in out.stderr and "Traceback" not in out.stderr
