"""Shared fixtures: a real database per backend (SQLite always, PostgreSQL when
INCIDENTBOT_TEST_DATABASE_URL is set), a runtime wired to it, and a loopback HTTP server."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from incidentbot.db import Database

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PG_URL = os.environ.get("INCIDENTBOT_TEST_DATABASE_URL")

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def pytest_report_header(config):
    return f"database backends: {', '.join(BACKENDS)}" + (
        "" if PG_URL else " (set INCIDENTBOT_TEST_DATABASE_URL for PostgreSQL)"
    )


def _pg_admin_url(url: str) -> str:
    base, _, _db = url.rpartition("/")
    return base + "/postgres"


@pytest.fixture(scope="session")
def pg_database_url():
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    if not PG_URL:
        pytest.skip("INCIDENTBOT_TEST_DATABASE_URL not set")
    name = f"incidentbot_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(_pg_admin_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rpartition("/")[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


_templates: dict[str, str] = {}


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path_factory, tmp_path):
    """A fresh, migrated database for each test: a copy of a template migrated once per session.

    A fresh database per test (rather than truncating a shared one) means a background worker a
    failed test left running can never touch the next test's data."""
    if request.param == "sqlite":
        if "sqlite" not in _templates:
            path = tmp_path_factory.mktemp("template") / "template.db"
            template = Database(f"sqlite:///{path}")
            template.migrate()
            with template.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            template.dispose()
            _templates["sqlite"] = str(path)
        target = tmp_path / "incidentbot.db"
        shutil.copyfile(_templates["sqlite"], target)
        yield f"sqlite:///{target}"
        return
    base = request.getfixturevalue("pg_database_url")
    if "postgresql" not in _templates:
        template = Database(base)
        template.migrate()
        template.dispose()
        _templates["postgresql"] = base.rpartition("/")[2]
    name = f"ibt_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_pg_admin_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_templates["postgresql"]}"'))
    try:
        yield base.rpartition("/")[0] + "/" + name
    finally:
        # Finalise connections a test leaked (exception tracebacks keep them in reference cycles)
        # now, while their database still exists. Left to a later, random garbage collection, the
        # pool logs a ROLLBACK failure from inside whatever runs then; on CPython 3.11.7 that once
        # landed inside pytest's own ast.parse and crashed the run (cpython gh-106905).
        gc.collect()
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def settings_factory(tmp_path, db_url):
    from incidentbot.settings import load_settings

    def make(**overrides):
        values = dict(
            database_url=db_url,
            ingest_tokens="test-token,alertmanager:am-token,read:read-token",
            runbooks_dir=ROOT / "runbooks",
            channel=None,
        )
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def runtime(db, settings_factory):
    from incidentbot.runtime import build_runtime

    return build_runtime(settings_factory(), db=db, migrate=False)


@pytest.fixture
def client(runtime):
    from fastapi.testclient import TestClient

    from incidentbot.api import create_app

    with TestClient(create_app(runtime)) as c:
        c.headers["Authorization"] = "Bearer test-token"
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server on loopback in a thread."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_server(runtime):
    from incidentbot.api import create_app

    with LiveServer(create_app(runtime)) as server:
        yield server


def event(**kw) -> dict:
    base = {"job_id": "job-1", "message": "RuntimeError: CUDA error: an illegal memory access was encountered"}
    base.update(kw)
    return base


class SlackHarness:
    """The real service (API + Bolt app + workers) on loopback, talking to the local Slack stand-in."""

    SECRET = "test-signing-secret"

    def __init__(self, rt, ws, slack_server, service, sim, channel):
        self.rt, self.ws, self.slack_server, self.service, self.sim, self.channel = (
            rt,
            ws,
            slack_server,
            service,
            sim,
            channel,
        )

    def command(self, text: str, *, user: str = "UALICE"):
        before = len(self.ws.ephemeral_for(user))
        resp = self.sim.slash_command("/incident", text, user=user, channel=self.channel)
        resp.replies_before = before
        return resp

    def reply(self, resp, user: str = "UALICE", timeout: float = 10.0) -> dict:
        """What the user saw for a command: the ack body when the reply rode on it, else the
        response_url follow-up that replaced "Working on it…"."""
        body = resp.json
        if isinstance(body, dict) and body.get("blocks"):
            return body
        return self.sim.wait_for_reply(
            user,
            lambda r: bool(r.get("blocks")) and "Working on it" not in (r.get("text") or ""),
            after=getattr(resp, "replies_before", 0),
            timeout=timeout,
        )

    def reply_text(self, resp, user: str = "UALICE", timeout: float = 10.0) -> str:
        import json as _json

        return _json.dumps(self.reply(resp, user, timeout))

    def ingest(self, events):
        import httpx as _httpx

        r = _httpx.post(
            f"{self.service.url}/v1/events",
            json={"events": events},
            headers={"Authorization": "Bearer test-token"},
            timeout=60,
        )
        assert r.status_code == 202, r.text
        return r.json()

    def channel_messages(self):
        return self.ws.messages(self.channel)


@pytest.fixture
def slack_harness(db, settings_factory):
    from slack_sdk import WebClient

    from incidentbot.app import SlackSetup, build_app
    from incidentbot.localslack import SlackSimulator, Workspace, run_in_thread
    from incidentbot.runtime import build_runtime

    ws = Workspace()
    channel = ws.create_channel("gpu-incidents")
    for name in ("alice", "bob", "carol", "dave"):
        ws.add_user(name, user_id=f"U{name.upper()}")
    server = run_in_thread(ws)
    settings = settings_factory(
        channel=channel, alert_update_interval=0.5, analysis_debounce=0.2, scheduler="off", admins="UALICE"
    )
    rt = build_runtime(settings, db=db, migrate=False)
    setup = SlackSetup(
        client=WebClient(token=ws.bot_token, base_url=server.api_url), signing_secret=SlackHarness.SECRET
    )
    app = build_app(rt, slack=setup, start_workers=True)
    with LiveServer(app) as service:
        sim = SlackSimulator(
            ws, bot_url=f"{service.url}/slack/events", signing_secret=SlackHarness.SECRET, localslack_url=server.url
        )
        yield SlackHarness(rt, ws, server, service, sim, channel)
        sim.close()
    server.stop()


def eventually(predicate, *, timeout: float = 10.0, interval: float = 0.02):
    """Wait for a condition the test cannot be notified of (database state), bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def add_hypothesis(db, title: str, signatures: dict[int, int], *, cause_class: str = "software", **fields) -> int:
    """A hypothesis made by hand over ``signatures`` ({signature id: event count}); returns its id."""
    from incidentbot.models import Hypothesis, HypothesisSignature

    with db.write() as s:
        h = Hypothesis(title=title, cause_class=cause_class, **fields)
        s.add(h)
        s.flush()
        s.add_all(
            [HypothesisSignature(hypothesis_id=h.id, signature_id=sid, event_count=n) for sid, n in signatures.items()]
        )
        return h.id
