"""Outbox messages named once (services/messages.py) and the thread notes' words (slack/views.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from incidentbot.models import Outbox
from incidentbot.services import messages as m
from incidentbot.slack.views import thread_note_text
from tests.conftest import add_hypothesis, event

# (message, op, channel, message_key, thread_key, dedupe_key, payload)
CONSTRUCTED = [
    (
        m.alert(channel="C1", signature_id=7),
        "post",
        "C1",
        "alert:S-7",
        None,
        "post:alert:S-7",
        {"render": "signature_alert", "signature_id": 7},
    ),
    (
        m.alert_edit(signature_id=7),
        "update",
        None,
        "alert:S-7",
        None,
        "update:alert:S-7",
        {"render": "signature_alert", "signature_id": 7},
    ),
    (
        m.signature_rollup(channel="C1", quota_key="20250101T000000:*"),
        "post",
        "C1",
        "rollup:20250101T000000:*",
        None,
        "post:rollup:20250101T000000:*",
        {"render": "signature_rollup", "quota": "20250101T000000:*"},
    ),
    (
        m.signature_rollup_edit(quota_key="q"),
        "update",
        None,
        "rollup:q",
        None,
        "update:rollup:q",
        {"render": "signature_rollup", "quota": "q"},
    ),
    (
        m.announcement(channel="C1", hypothesis_id=3),
        "post",
        "C1",
        "hyp:H-3",
        None,
        "post:hyp:H-3",
        {"render": "hypothesis", "hypothesis_id": 3},
    ),
    (
        m.poll(channel="C1", poll_id=2),
        "post",
        "C1",
        "poll:P-2",
        None,
        "post:poll:P-2",
        {"render": "poll", "poll_id": 2},
    ),
    (m.poll_edit(poll_id=2), "update", None, "poll:P-2", None, "update:poll:P-2", {"render": "poll", "poll_id": 2}),
    # The digest's dedupe key is its message key itself (a week is posted once per channel, ever).
    (
        m.digest(channel="C1", week="2025-W03"),
        "post",
        "C1",
        "digest:C1:2025-W03",
        None,
        "digest:C1:2025-W03",
        {"render": "digest", "week": "2025-W03", "channel": "C1"},
    ),
    # A thread note has no key of its own and no dedupe slot: each one is a new reply.
    (
        m.thread_note(channel="C1", thread_key="alert:S-7", note="resolved", hypothesis_id=3, actor="U1", cause="x"),
        "post",
        "C1",
        None,
        "alert:S-7",
        None,
        {"render": "note", "note": "resolved", "hypothesis_id": 3, "actor": "U1", "cause": "x"},
    ),
]


@pytest.mark.parametrize("msg,op,channel,key,thread,dedupe,payload", CONSTRUCTED)
def test_each_message_has_its_op_keys_and_payload(msg, op, channel, key, thread, dedupe, payload):
    assert (msg.op, msg.channel, msg.message_key, msg.thread_key, msg.dedupe_key, msg.payload) == (
        op,
        channel,
        key,
        thread,
        dedupe,
        payload,
    )


def test_bad_messages_are_refused():
    with pytest.raises(ValueError, match="unknown thread note 'gossip'"):
        m.thread_note(channel="C1", thread_key="alert:S-1", note="gossip")
    with pytest.raises(ValueError, match="message_key"):
        m.edit(m.thread_note(channel="C1", thread_key="alert:S-1", note="spread"))


EVIL = "<!channel> & <https://x|y>"

# (note facts, the text Slack shows): the wording the services used to write themselves, with every
# untrusted fact escaped, so no note can ping @channel or make a link.
NOTES = [
    (
        {"note": "resolved", "hypothesis_id": 4, "actor": "UALICE", "cause": "race in <kernel>"},
        ":white_check_mark: H-4 resolved by <@UALICE>: race in &lt;kernel&gt;",
    ),
    (
        {
            "note": "regressed",
            "hypothesis_id": 4,
            "by": "UALICE",
            "cause": "bug",
            "fix": "",
            "fixed_in": "",
            "where": "job j3",
        },
        ":rotating_light: Regression: H-4 was resolved by <@UALICE> (bug; fix: —) but it is back in job j3.",
    ),
    (
        {
            "note": "regressed",
            "hypothesis_id": 4,
            "by": "U1",
            "cause": EVIL,
            "fix": EVIL,
            "fixed_in": "torch=2.4",
            "where": "job <!here> on v1.6",
        },
        ":rotating_light: Regression: H-4 was resolved by <@U1> (&lt;!channel&gt; &amp; &lt;https://x|y&gt;; "
        "fix: &lt;!channel&gt; &amp; &lt;https://x|y&gt;; fixed in torch=2.4) but it is back in job &lt;!here&gt; on v1.6.",
    ),
    (
        {"note": "spread", "signature_id": 9, "jobs": [12, 3], "hosts": [1500, 40]},
        ":arrow_upper_right: S-9 spread: now in 12 jobs (was 3) and 1,500 hosts (was 40).",
    ),
    (
        {"note": "spread", "signature_id": 9, "jobs": None, "hosts": [5, 2]},
        ":arrow_upper_right: S-9 spread: now in 5 hosts (was 2).",
    ),
]


@pytest.mark.parametrize("note,text", NOTES)
def test_thread_notes_are_worded_and_escaped_at_delivery(note, text):
    assert thread_note_text({"render": "note", **note}) == text


def test_an_unknown_note_kind_is_an_error_not_an_empty_reply():
    with pytest.raises(ValueError, match="unknown thread note"):
        thread_note_text({"render": "note", "note": "gossip"})


def test_a_resolution_queues_facts_not_mrkdwn(db, settings_factory):
    from incidentbot.ingest import EventIn
    from incidentbot.runtime import build_runtime

    runtime = build_runtime(settings_factory(channel="C0TEST"), db=db, migrate=False)
    runtime.ingest.ingest(
        [
            EventIn.model_validate(
                event(event_id="r1", message="RuntimeError: CUDA error: an illegal memory access was encountered")
            )
        ]
    )
    hid = add_hypothesis(runtime.db, "kernel bug", {1: 1})
    runtime.resolutions.resolve(hid, cause="a <b> & c", actor="UALICE")
    with runtime.db.read() as s:
        [row] = s.scalars(select(Outbox).where(Outbox.thread_key == "alert:S-1")).all()
    assert row.payload == {
        "render": "note",
        "note": "resolved",
        "hypothesis_id": hid,
        "actor": "UALICE",
        "cause": "a <b> & c",
    }
    assert thread_note_text(row.payload) == f":white_check_mark: H-{hid} resolved by <@UALICE>: a &lt;b&gt; &amp; c"
