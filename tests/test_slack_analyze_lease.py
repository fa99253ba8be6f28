"""`/incident analyze` takes the analysis lease the API, the CLI and the background worker take,
so two analyses never reconcile over each other."""

from __future__ import annotations

import time

from incidentbot.models import Hypothesis

ILLEGAL = "RuntimeError: CUDA error: an illegal memory access was encountered"


def _hypotheses(rt) -> int:
    with rt.db.read() as s:
        return s.query(Hypothesis).count()


def test_slash_analyze_waits_for_the_lease(slack_harness):
    h = slack_harness
    h.ingest(
        [{"job_id": f"j{i}", "host": "node-1", "code_version": "v2", "message": ILLEGAL, "rank": i} for i in range(30)]
    )
    holder = "test-holder"
    assert h.rt.hypotheses._claim(holder)  # another replica's analysis is running
    try:
        resp = h.command("analyze")
        time.sleep(1.5)
        # While the lease is held, the command has not analysed (nothing reconciled, no reply).
        assert _hypotheses(h.rt) == 0
        assert not [r for r in h.ws.ephemeral_for("UALICE") if "Analysed" in (r.get("text") or "")]
    finally:
        h.rt.hypotheses._release(holder)
    text = h.reply_text(resp, timeout=60)
    assert "Analysed 30 events" in text, text
