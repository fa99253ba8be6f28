"""Faults: SIGKILL in the middle of ingest and of Slack delivery, PostgreSQL dropping connections
under traffic, Slack answering 429/500 for a long stretch, and a read-only database.

The process-level scenarios run a real `incidentbot serve` subprocess (bench/faults.py holds them;
it prints the bigger figures in docs/reliability.md) and count what clients were told against what
the database and the Slack stand-in hold afterwards.
"""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import create_engine, event, func, select

from incidentbot.models import Event, Signature
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import faults  # noqa: E402
from storm import slack_standin  # noqa: E402


def test_sigkill_during_ingest_loses_no_acknowledged_event_and_stores_retries_once(db_url):
    o = faults.kill_during_ingest(db_url, events=2_000, batch=50, clients=6, kills=1)
    assert o.transport_errors > 0, "the kill happened while requests were in flight"
    assert o.acknowledged == o.sent == 2_000
    assert o.lost == 0, "an event acknowledged with 202 is never lost"
    assert o.stored == o.extra["distinct"] == 2_000, "retried batches are stored once"
    assert o.extra["signature_count_sum"] == 2_000, "counters agree with the rows: nothing half-written"


@pytest.mark.parametrize("failing", [False, True], ids=["slack-slow", "slack-503"])
def test_sigkill_during_slack_delivery_neither_loses_nor_doubles_a_message(db_url, failing):
    if failing and db_url.startswith("postgresql"):
        pytest.skip("the outbox logic under a failing Slack does not depend on the backend; kept quick on one")
    with slack_standin() as slack:
        o = faults.kill_during_delivery(db_url, slack, signatures=6, failing=failing, delay=0.5)
    assert o.extra["counts"]["outbox_open"] == 0 and o.extra["counts"]["outbox_failed"] == 0
    assert o.stored == 6, f"one alert per signature, none lost, none doubled: {o}"
    assert o.extra["duplicates"] == 0 and o.lost == 0
    assert o.extra["signatures_in_messages"] == 6
    if not failing:
        # The post in flight at the kill reached Slack; after the restart it was looked up by its
        # metadata rather than posted again.
        assert o.extra["posts"] == 6
        if o.extra["claimed_at_kill"]:
            assert o.extra["lookups"] >= 1


def test_slack_429_then_500_for_a_stretch_everything_delivered_once_in_order(db_url):
    with slack_standin() as slack:
        o = faults.slack_down_for_a_while(db_url, slack, seconds_429=2, seconds_500=1.5, jobs=3)
    assert o.statuses.get(429, 0) >= 1 and o.statuses.get(500, 0) >= 1, o.statuses
    assert o.extra["outbox_failed"] == 0
    assert o.lost == 0 and o.extra["duplicates"] == 0
    assert o.stored == o.extra["outbox_posts"] >= 4
    assert o.extra["replies"] >= 1 and o.extra["in_order"], o.extra


def test_postgresql_dropping_connections_under_traffic(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("connection termination is a PostgreSQL scenario")
    o = faults.pg_connections_dropped(db_url, events=2_000, batch=50, clients=4, storm_seconds=1.5, every=0.15)
    assert o.extra["terminated"] > 0
    assert o.lost == 0
    assert o.stored == o.extra["distinct"] == 2_000
    assert o.extra["signature_count_sum"] == 2_000, "nothing half-written"
    assert o.extra["health_after"] == 200 and o.extra["recovered_s"] is not None and o.extra["recovered_s"] < 10
    assert set(o.statuses) <= {202, 503}, f"errors clients can retry, never a bare 500: {o.statuses}"


def _make_read_only(db) -> None:
    @event.listens_for(db.engine, "connect")
    def _read_only(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        if db.is_sqlite:
            cur.execute("PRAGMA query_only = ON")
        else:
            cur.execute("SET default_transaction_read_only = on")
            dbapi_conn.commit()
        cur.close()

    db.engine.dispose()


def test_read_only_database_is_a_clear_503_never_a_silent_202(client, runtime, db_url):
    ok = client.post(
        "/v1/events", json={"events": [{"event_id": "before", "job_id": "j", "message": "RuntimeError: one"}]}
    )
    assert ok.status_code == 202
    _make_read_only(runtime.db)
    for body in (
        {"events": [{"event_id": "ro-1", "job_id": "j", "message": "RuntimeError: two"}]},
        {
            "events": [
                {"event_id": "before", "job_id": "j", "message": "RuntimeError: one"},
                {"event_id": "ro-2", "job_id": "j", "message": "RuntimeError: one"},
            ]
        },
    ):
        r = client.post("/v1/events", json=body)
        assert r.status_code == 503, r.text
        assert "database unavailable" in r.json()["detail"] and "read" in r.json()["detail"].lower()
        assert r.headers.get("retry-after")
    am = client.post(
        "/v1/alertmanager",
        json={
            "version": "4",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "GPUFellOffBus", "instance": "c2-gpu0011"},
                    "annotations": {"description": "Xid 79"},
                    "startsAt": "2025-01-01T00:00:00Z",
                    "fingerprint": "abc",
                }
            ],
        },
    )
    assert am.status_code in (503, 422), am.text
    engine = create_engine(db_url)
    with engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(Event)) == 1
        assert c.scalar(select(func.count()).select_from(Signature)) == 1
        assert c.scalar(select(func.sum(Signature.count))) == 1
    engine.dispose()
    # Reads still work; the health check says why ingest is refused.
    assert client.get("/v1/events").status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 200, "the contract: 200 while the database answers"
    assert health.json() == {"ok": True, "database": "read-only", "writable": False}


def test_full_disk_is_a_503_that_loses_nothing_and_recovers(client, runtime, db_url):
    """SQLite's max_page_count stands in for a full disk: the write fails with SQLITE_FULL,
    exactly as when the file system has no space left."""
    if not db_url.startswith("sqlite"):
        pytest.skip("a full disk is simulated through SQLite's page limit")
    ok = client.post(
        "/v1/events",
        json={"events": [{"event_id": f"pre-{i}", "job_id": "j", "message": "RuntimeError: one"} for i in range(10)]},
    )
    assert ok.status_code == 202
    db = runtime.db
    with db.engine.connect() as c:
        pages = c.exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(db.engine, "connect")
    def _full(dbapi_conn, _record):
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 2}")

    db.engine.dispose()
    big = [{"event_id": f"big-{i}", "job_id": "j", "message": f"RuntimeError: {'x' * 2000} {i}"} for i in range(200)]
    r = client.post("/v1/events", json={"events": big})
    assert r.status_code == 503, r.text
    assert "full" in r.json()["detail"] and r.headers.get("retry-after")
    with db.engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(Event)) == 10
        assert c.scalar(select(func.sum(Signature.count))) == 10, "counters agree with the rows"
    # Space again: the same batch goes in whole, once.
    event.remove(db.engine, "connect", _full)
    db.engine.dispose()
    again = client.post("/v1/events", json={"events": big})
    assert again.status_code == 202 and again.json()["accepted"] == 200
    with db.engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(Event)) == 210


def test_postgresql_server_crash_and_restart_under_traffic(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server restart is a PostgreSQL scenario")
    try:
        server = faults.throwaway_postgres()
        url, restart = server.__enter__()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        o = faults.pg_restarted(url, restart, events=2_000, batch=50, clients=4, down_for=1.0)
    finally:
        server.__exit__(None, None, None)
    assert o.lost == 0, "an acknowledged event did not survive the crash"
    assert o.stored == o.extra["distinct"] == 2_000
    assert o.extra["signature_count_sum"] == 2_000, "nothing half-written"
    assert o.extra["health_after"] == 200 and o.extra["recovered_s"] is not None and o.extra["recovered_s"] < 15
    assert set(o.statuses) <= {202, 503}, f"errors clients can retry, never a bare 500: {o.statuses}"
    assert o.extra["server_tracebacks"] == 0, "a database outage is one log line per failure, not a stack trace"
