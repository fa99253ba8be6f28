"""The analysis lease (issue 17): its holder renews it with a heartbeat, so a live analysis keeps
it however long it runs, and a holder killed with SIGKILL is replaced within the lease's short
expiry (30 s by default, not 5 minutes), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from incidentbot.models import WorkClaim, utcnow
from incidentbot.services import hypotheses as hyp_module
from incidentbot.services.hypotheses import AnalysisBusy
from tests.conftest import ROOT, event

HOLDER = textwrap.dedent("""
    import sys, time
    import incidentbot.services.hypotheses as hm
    from incidentbot.db import Database
    hm.HEARTBEAT = float(sys.argv[2])
    svc = hm.HypothesisService(Database(sys.argv[1]))
    assert svc._claim("doomed-holder")
    with svc._heartbeat("doomed-holder"):
        print("holding", flush=True)
        time.sleep(3600)  # an analysis that never ends: the lease is held only by the heartbeat
""")


def test_defaults_replace_a_dead_holder_within_a_minute():
    assert hyp_module.LEASE <= timedelta(seconds=30)
    assert hyp_module.HEARTBEAT * 3 <= hyp_module.LEASE.total_seconds()  # two missed beats are not an expiry


def test_a_lease_whose_holder_stopped_heartbeating_is_taken_over(client, runtime):
    assert client.post("/v1/events", json={"events": [event(event_id="e1")]}).status_code == 202
    with runtime.db.write() as s:  # a holder that last renewed just over the expiry ago, then died
        s.add(
            WorkClaim(
                key="analysis", claimed_at=utcnow() - hyp_module.LEASE - timedelta(seconds=1), claimed_by="dead:1"
            )
        )
    started = time.monotonic()
    r = client.post("/v1/analyze")
    assert r.status_code == 200 and r.json()["events"] == 1
    assert time.monotonic() - started < 5, "no wait for a 5-minute lease"
    with runtime.db.read() as s:
        assert s.get(WorkClaim, "analysis") is None  # released after the run


def test_a_sigkilled_holder_is_replaced_and_a_live_one_is_not(client, runtime, db_url, monkeypatch):
    lease, beat = 3.0, 0.5  # scaled down from 30 s / 5 s so the test takes seconds
    monkeypatch.setattr(hyp_module, "LEASE", timedelta(seconds=lease))
    assert client.post("/v1/events", json={"events": [event(event_id="e1")]}).status_code == 202
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db_url, str(beat)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        # Alive and renewing: after twice the expiry the lease is still its own.
        time.sleep(2 * lease)
        with pytest.raises(AnalysisBusy):
            runtime.hypotheses.analyze_exclusive(worker="api", wait=0.5)
        with runtime.db.read() as s:
            claim = s.get(WorkClaim, "analysis")
            assert claim.claimed_by == "doomed-holder"
            assert (utcnow() - claim.claimed_at).total_seconds() < 2 * beat + 1
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        killed = time.monotonic()
        r = client.post("/v1/analyze")  # waits (up to 60 s) for the lease, as the API does
        waited = time.monotonic() - killed
        assert r.status_code == 200, r.text
        assert waited <= lease + 2, f"took over after {waited:.1f}s"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
    with runtime.db.read() as s:
        assert s.scalars(select(WorkClaim).where(WorkClaim.key == "analysis")).first() is None
