"""Operations: prune keeps history, metrics, schema-ahead refusal, the migrate command."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from incidentbot.db import Database, SchemaAheadError
from incidentbot.models import Event, Hypothesis, HypothesisSignature, Signature
from incidentbot.services.prune import prune
from tests.conftest import ROOT, add_hypothesis, event


def test_prune_removes_old_events_and_keeps_history(client, runtime, db):
    client.post("/v1/events", json={"events": [event(event_id=f"p{i}", rank=i) for i in range(30)]})
    with db.write() as s:
        s.execute(
            Event.__table__.update()
            .where(Event.event_id.in_([f"p{i}" for i in range(20)]))
            .values(received_at=datetime.now(timezone.utc) - timedelta(days=120))
        )
        h = Hypothesis(title="kept", cause_class="software", event_count=30)
        s.add(h)
        s.flush()
        s.add(HypothesisSignature(hypothesis_id=h.id, signature_id=1, event_count=30))
    assert prune(db, older_than=timedelta(days=90), batch=7) == 20
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 10
        assert s.get(Signature, 1).count == 30
        assert s.scalar(select(func.count()).select_from(Hypothesis)) == 1
    assert client.get("/v1/signatures").json()["signatures"][0]["count"] == 30


def test_metrics_count_ingest_outcomes(client):
    client.post("/v1/events", json={"events": [event(event_id="m1"), event(event_id="m1")]})
    client.post("/v1/events", json={"events": [{"job_id": "x"}]})
    body = client.get("/metrics").text
    assert 'incidentbot_events_total{outcome="accepted",source="api"} 1.0' in body
    assert 'incidentbot_events_total{outcome="duplicate",source="api"} 1.0' in body
    assert 'incidentbot_events_total{outcome="rejected",source="api"} 1.0' in body
    assert 'incidentbot_signatures{state="active"} 1.0' in body
    assert "incidentbot_ingest_seconds_bucket" in body
    assert "test-token" not in body


def test_schema_ahead_of_the_code_is_refused(db_url):
    db = Database(db_url)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed9999'"))
    with pytest.raises(SchemaAheadError, match="f00dfeed9999"):
        db.migrate()
    out = subprocess.run(
        [sys.executable, "-m", "incidentbot", "migrate"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"INCIDENTBOT_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 2 and "newer version" in out.stderr and "Traceback" not in out.stderr
    db.dispose()


def test_migrate_command_on_a_new_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    out = subprocess.run(
        [sys.executable, "-m", "incidentbot", "migrate"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"INCIDENTBOT_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    with Database(url).read() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 0


def test_json_logs_never_contain_tokens(capsys):
    import json as _json
    import logging

    from incidentbot.logs import configure_logging

    configure_logging("json", "INFO")
    try:
        logging.getLogger("incidentbot.test").info("posting with xoxb-1234-5678-abcdef and Bearer s3cr3t-token")
        line = capsys.readouterr().err.strip().splitlines()[-1]
        record = _json.loads(line)
        assert record["level"] == "INFO" and record["logger"] == "incidentbot.test"
        assert "xoxb-1234" not in line and "s3cr3t-token" not in line and "[redacted]" in record["message"]
    finally:
        logging.getLogger().handlers[:] = []


def test_serve_with_worker_processes(tmp_path):
    import os
    import time

    import httpx

    from tests.conftest import free_port

    url = f"sqlite:///{tmp_path / 'w.db'}"
    port = free_port()
    base_env = {"INCIDENTBOT_DATABASE_URL": url, "INCIDENTBOT_INGEST_TOKENS": "t", "PATH": os.environ["PATH"]}
    refused = subprocess.run(
        [sys.executable, "-m", "incidentbot", "serve", "--port", str(port), "--workers", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=base_env,
        timeout=60,
    )
    assert refused.returncode == 2 and "Slack credentials" in refused.stderr and "SLACK_BOT_TOKEN" in refused.stderr
    env = {
        **base_env,
        "SLACK_BOT_TOKEN": "xoxb-x",
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "incidentbot", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.2)
        results = [
            httpx.post(
                f"http://127.0.0.1:{port}/v1/events",
                headers={"Authorization": "Bearer t"},
                json={"events": [event(event_id=f"w{i}-{j}", rank=j) for j in range(50)]},
            ).json()
            for i in range(10)
        ]
        assert sum(r["accepted"] for r in results) == 500
    finally:
        proc.terminate()
        proc.wait(20)
    with Database(url).read() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 500


def test_metrics_cover_refusals_analysis_outbox_and_scheduler(db, settings_factory):
    """Every family the operator's guide lists, moved by the thing it counts."""
    from fastapi.testclient import TestClient
    from slack_sdk import WebClient

    from incidentbot.app import SlackSetup, build_app
    from incidentbot.localslack import Workspace, run_in_thread
    from incidentbot.runtime import build_runtime

    ws = Workspace()
    server = run_in_thread(ws)
    try:
        rt = build_runtime(
            settings_factory(channel="C0GONE0000", scheduler="off", max_body_bytes=20_000), db=db, migrate=False
        )
        app = build_app(
            rt,
            slack=SlackSetup(client=WebClient(token=ws.bot_token, base_url=server.api_url), signing_secret="s"),
            start_workers=False,
        )
        with TestClient(app) as c:
            auth = {"Authorization": "Bearer test-token"}
            assert c.post("/v1/events", content=b"{nope", headers=auth).status_code == 400
            assert (
                c.post("/v1/events", json={"events": []}, headers={"Authorization": "Bearer wrong"}).status_code == 401
            )
            assert (
                c.post("/v1/events", json={"events": []}, headers={"Authorization": "Bearer read-token"}).status_code
                == 403
            )
            assert c.post("/v1/events", content=b"x" * 30_000, headers=auth).status_code == 413
            assert (
                c.post(
                    "/v1/events", json={"events": [event(event_id=f"e{i}", rank=i) for i in range(5)]}, headers=auth
                ).status_code
                == 202
            )
            am = {
                "version": "4",
                "status": "firing",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "GPUFellOffBus", "instance": "n1"},
                        "annotations": {"description": "Xid 79"},
                        "fingerprint": "f1",
                    }
                ],
            }
            assert c.post("/v1/alertmanager", json=am, headers={"Authorization": "Bearer am-token"}).status_code == 202
            assert c.post("/v1/analyze", headers=auth).status_code == 200
            # The configured channel does not exist: the alerts fail permanently, by Slack's code.
            app.state.workers.deliver()
            with rt.db.write() as s:
                s.add(Hypothesis(title="one bug", cause_class="software"))
            body = c.get("/metrics", headers=auth).text  # TestClient is not a loopback peer
    finally:
        server.stop()
    for line in (
        'incidentbot_requests_refused_total{path="/v1/events",reason="bad_json"} 1.0',
        'incidentbot_requests_refused_total{path="/v1/events",reason="unauthorized"} 1.0',
        'incidentbot_requests_refused_total{path="/v1/events",reason="forbidden"} 1.0',
        'incidentbot_requests_refused_total{path="/v1/events",reason="too_large"} 1.0',
        'incidentbot_events_total{outcome="accepted",source="alertmanager"} 1.0',
        'incidentbot_ingest_seconds_count{source="alertmanager"} 1.0',
        "incidentbot_analysis_seconds_count 1.0",
        'incidentbot_slack_delivery_errors_total{error="channel_not_found"}',
    ):
        assert line in body, line
    assert re.search(r'incidentbot_hypotheses\{status="open"\} [1-9]', body)
    assert re.search(r'incidentbot_outbox_backlog\{status="failed"\} [1-9]', body)
    assert re.search(r'incidentbot_scheduler_runs_total\{job="deliveries"\} [1-9]', body)
    assert "test-token" not in body and "am-token" not in body


def test_one_log_line_per_event_of_interest_and_none_for_rolled_back_work(client, runtime, caplog):
    import logging

    from incidentbot.models import Hypothesis as H

    caplog.set_level(logging.INFO, logger="incidentbot.audit")
    client.post("/v1/events", json={"events": [event(event_id="a1")]})
    with runtime.db.write() as s:
        h = H(title="one bug", cause_class="software")
        s.add(h)
        s.flush()
        hid = h.id
    runtime.resolutions.resolve(hid, cause="kernel race", actor="UALICE")
    runtime.signatures.mute(1, until=None, actor="UBOB", duration=timedelta(hours=2))
    with pytest.raises(RuntimeError):
        with runtime.db.write() as s:
            runtime.resolutions._thread_note(s, hid, "never")
            s.add(H(title="rolled back", cause_class="software"))
            from incidentbot.models import HypothesisLog

            s.add(HypothesisLog(hypothesis_id=hid, at=datetime.now(timezone.utc), kind="note", text="rolled back"))
            s.flush()
            raise RuntimeError("abort")
    lines = [r.getMessage() for r in caplog.records if r.name == "incidentbot.audit"]
    assert any(l.startswith("S-1 new signature (cuda_runtime)") for l in lines), lines
    assert any(l.startswith(f"H-{hid} resolved by UALICE: resolved: kernel race") for l in lines), lines
    assert any(l.startswith("S-1 muted until") for l in lines), lines
    assert not any("rolled back" in l for l in lines), lines


def test_prune_command_then_analysis_keeps_what_people_decided(client, runtime, db, db_url):
    """`incidentbot prune --older-than 90d` from a terminal, then a re-analysis: old raw events go;
    signatures keep their counters; a resolved hypothesis keeps its status and resolution."""
    client.post("/v1/events", json={"events": [event(event_id=f"q{i}", rank=i) for i in range(12)]})
    with db.write() as s:
        s.execute(
            Event.__table__.update()
            .where(Event.event_id.in_([f"q{i}" for i in range(8)]))
            .values(received_at=datetime.now(timezone.utc) - timedelta(days=100))
        )
    hid = add_hypothesis(db, "old bug", {1: 12}, event_count=12)
    runtime.resolutions.resolve(hid, cause="fixed long ago", actor="UALICE")
    env = {"INCIDENTBOT_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "incidentbot", "prune", "--older-than", "90d"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "pruned 8 raw events" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "incidentbot", "prune", "--older-than", "ninety"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert client.post("/v1/analyze").status_code == 200
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 4
        assert s.get(Signature, 1).count == 12
        kept = s.get(Hypothesis, hid)
        assert kept.status == "resolved" and kept.resolution["cause"] == "fixed long ago"


def test_sigterm_under_load_keeps_every_acknowledged_event_and_leaves_the_outbox_to_the_next_process(tmp_path, db_url):
    """SIGTERM while clients post and alerts wait for Slack: every 202 is stored, nothing half
    written, the process exits cleanly, and the next process delivers each alert once."""
    import os
    import signal
    import threading
    import time

    import httpx

    from incidentbot.localslack import Workspace, run_in_thread
    from incidentbot.models import Outbox
    from tests.conftest import free_port

    ws = Workspace()
    channel = ws.create_channel("gpu-incidents")
    slack = run_in_thread(ws)
    ws.fail_for(3600, 503, method="chat.postMessage")  # Slack down: alerts wait in the outbox
    port = free_port()
    env = {
        "INCIDENTBOT_DATABASE_URL": db_url,
        "INCIDENTBOT_INGEST_TOKENS": "t",
        "PATH": os.environ["PATH"],
        "SLACK_BOT_TOKEN": ws.bot_token,
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_API_URL": slack.api_url,
        "INCIDENTBOT_CHANNEL": channel,
        "INCIDENTBOT_SCHEDULER": "off",
    }

    def start():
        proc = subprocess.Popen(
            [sys.executable, "-m", "incidentbot", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)

    KINDS = ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf"]  # seven failure modes
    proc = start()
    acked: list[str] = []
    stop = threading.Event()

    def client(n: int):
        with httpx.Client(timeout=30) as c:
            for i in range(10_000):
                if stop.is_set():
                    return
                batch = [
                    event(event_id=f"c{n}-{i}-{j}", rank=j, message=f"{KINDS[i % 7]}Error: the loader failed")
                    for j in range(50)
                ]
                try:
                    r = c.post(
                        f"http://127.0.0.1:{port}/v1/events",
                        json={"events": batch},
                        headers={"Authorization": "Bearer t"},
                    )
                except httpx.HTTPError:
                    return  # the server is going away: a real client would retry elsewhere
                if r.status_code == 202:
                    acked.extend(e["event_id"] for e in batch)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    # uvicorn finishes in-flight requests, runs the shutdown (workers stop, claims released), then
    # re-raises the signal so the exit status says SIGTERM.
    assert proc.wait(30) in (0, -signal.SIGTERM), "serve did not stop on SIGTERM"
    stop.set()
    for t in threads:
        t.join(30)
    db = Database(db_url)
    try:
        with db.read() as s:
            stored = set(s.scalars(select(Event.event_id)))
            assert acked and set(acked) <= stored, "an acknowledged event was lost"
            assert s.scalar(select(func.sum(Signature.count))) == len(stored), "counters agree with the rows"
            waiting = s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "pending"))
            assert waiting >= 1
            assert s.scalar(select(func.count()).select_from(Outbox).where(Outbox.claimed_until.is_not(None))) == 0, (
                "a claim outlived the process"
            )
        # Slack is back; the next process delivers every alert, once.
        ws.clear_faults()
        proc = start()
        try:
            deadline = time.monotonic() + 30
            while True:
                with db.read() as s:
                    if not s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "pending")):
                        break
                assert time.monotonic() < deadline, "the next process did not deliver the outbox"
                time.sleep(0.2)
            with db.read() as s:
                signatures = s.scalar(select(func.count()).select_from(Signature))
            alerts = [
                m
                for m in ws.messages(channel)
                if any(str(b.get("block_id", "")).startswith("alert:") for b in m.get("blocks") or [])
            ]
            assert len(alerts) == signatures == 7  # (a hypothesis announcement may join them; it is not counted)
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        db.dispose()
        slack.stop()


def test_migrations_build_exactly_the_schema_the_models_describe(db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import incidentbot.models  # noqa: F401 - registers every table

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], diff


@pytest.mark.parametrize("args", [["hypotheses", "--json"], ["hypotheses", "--all"], ["--help"]])
def test_a_reader_that_leaves_early_is_no_traceback(client, runtime, db, db_url, args):
    """`incidentbot hypotheses --json | head`: the pipe closes before the output is written. The
    command exits as a SIGPIPE'd process does (141), with nothing on stderr."""
    client.post("/v1/events", json={"events": [event(event_id=f"p{i}", rank=i) for i in range(3)]})
    for i in range(40):
        add_hypothesis(db, f"bug {i} " + "x" * 200, {1: 3}, event_count=3)
    env = {"INCIDENTBOT_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "incidentbot", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env
    )
    proc.stdout.close()  # the reader is gone before the first byte is written
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err
