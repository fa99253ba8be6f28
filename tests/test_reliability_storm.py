"""Storm: a collective hang on a large job floods the ingest API with one watchdog line per rank.

A scaled-down run of `bench/storm.py` (5,000 ranks instead of 100,000; the figures for 100,000 are in
docs/reliability.md): a real `incidentbot serve` subprocess in real Slack mode, pointed at the local
Slack stand-in, many concurrent clients with lost answers and duplicate re-sends, and probes of
`/healthz` and a signed slash command while the storm runs.
"""

from __future__ import annotations

import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from storm import pct, run_storm, slack_standin  # noqa: E402

EVENTS = 5_000


def test_watchdog_storm_is_stored_once_grouped_once_and_posted_once(db_url):
    with slack_standin() as slack:
        r = run_storm(
            db_url,
            slack,
            events=EVENTS,
            clients=8,
            batch=250,
            lost_answer_rate=0.1,
            resend_rate=0.1,
            probe_interval=0.05,
            settle_timeout=60,
        )
        everything = slack.everything()
    # Every event stored exactly once, whatever the clients re-sent.
    assert r.resent > 0
    assert r.accepted == EVENTS, "each event is acknowledged as accepted exactly once"
    assert r.duplicates == r.resent, "every re-sent event is reported as a duplicate"
    assert r.counts["events"] == r.counts["distinct_ids"] == EVENTS
    # One failure mode, one signature, its counter equal to the rows.
    assert r.counts["signatures"] == 1 and r.counts["signature_count_sum"] == EVENTS
    # One alert, edited in place a few times, showing the whole storm; nothing left to send.
    assert r.alert_shows_total, "the alert never showed the final count"
    assert r.top_level_messages == 1
    # Zero edits is right too: the outbox renders at delivery, so when the storm is stored before
    # the first post goes out, that post already shows the total (in-place edits of an alert that
    # was posted first are pinned by test_slack_e2e::test_alert_is_posted_once_and_updated_in_place).
    assert r.alert_edits <= 10
    assert r.counts["outbox_open"] == 0 and r.counts["outbox_failed"] == 0
    assert len(everything) <= 5, f"a storm is not a flood of messages: {len(everything)}"
    # The service kept answering during the storm.
    assert r.health_failures == 0 and r.command_failures == 0
    assert len(r.health_ms) >= 3 and len(r.command_ms) >= 1
    assert pct(r.health_ms, 99) < 2000, r.health_ms
    assert max(r.command_ms) < 3000, "Slack gives a slash command 3 s to be acknowledged"
    assert r.peak_rss_mib < 500
