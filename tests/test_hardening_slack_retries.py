"""Slack retries act once (issue 17): a command, click, form submission or event that Slack
delivers again (``X-Slack-Retry-Num``, or the same payload resent) is acked and not acted on
again; a person doing the same thing twice still acts twice. Through the real Bolt app on
loopback, with the local Slack stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import func, select

from incidentbot.models import KeyValue, Ballot, Decision, Hypothesis, HypothesisLog, Outbox, Poll, WorkClaim
from tests.conftest import add_hypothesis, event, eventually

OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}


def resend(h, resp, *, headers=RETRY):
    """Slack's retry: the same payload, signed again, with the retry headers."""
    kind, payload = resp.kind, resp.payload
    if kind == "slash_command":
        body, ctype = urlencode(payload).encode(), "application/x-www-form-urlencoded"
    elif kind == "event":
        body, ctype = json.dumps(payload).encode(), "application/json"
    else:
        body, ctype = urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"
    return h.sim.post_signed(body, content_type=ctype, extra_headers=headers, kind=kind)


def state(h) -> dict:
    """Everything an action can change: rows and what the channel shows."""
    with h.rt.db.read() as s:
        rows = {
            m.__name__: s.scalar(select(func.count()).select_from(m))
            for m in (Poll, Ballot, Decision, HypothesisLog, Outbox)
        }
        rows["statuses"] = sorted((x.id, x.status, x.merged_into) for x in s.scalars(select(Hypothesis)))
    rows["messages"] = len(h.ws.messages(h.channel, include_replies=True))
    return rows


def settle(h):
    """Wait until the outbox is drained (posts of the first delivery are out)."""

    def drained():
        with h.rt.db.read() as s:
            return not s.scalar(
                select(func.count()).select_from(Outbox).where(Outbox.status.in_(("pending", "claimed")))
            )

    eventually(drained, timeout=15)
    time.sleep(0.3)


def setup_hypotheses(h) -> list[int]:
    h.ingest([event(event_id=f"r{i}", rank=i, message=OOM) for i in range(3)])
    h.ws.wait_for(lambda: h.channel_messages(), timeout=10)

    def analysed() -> bool:  # the background analysis has seen these events, so it will not run again
        with h.rt.db.read() as s:
            return s.get(KeyValue, "analysis.last_event_id") is not None

    eventually(analysed, timeout=15)
    return [add_hypothesis(h.rt.db, f"cause {n}", {1: 3}) for n in range(4)]


def test_retried_commands_act_once(slack_harness):
    h = slack_harness
    a, b, c, d = setup_hypotheses(h)
    commands = [f"vote H-{a} H-{b}", f"merge H-{c} H-{d}", f"reject H-{b}", f"vote close P-1"]
    for text in commands:
        first = h.command(text)
        assert first.status == 200
        h.reply_text(first)
        settle(h)
        after_first = state(h)
        for retry in (RETRY, {"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"}, {}):
            again = resend(h, first, headers=retry)
            assert again.status == 200, again.text
            settle(h)
            assert state(h) == after_first, (text, retry)
    assert h.rt.metrics.slack_duplicates.labels("command")._value.get() == 3 * len(commands)
    with h.rt.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Poll)) == 1


def test_retried_clicks_and_form_submissions_act_once(slack_harness):
    h = slack_harness
    a, b, *_ = setup_hypotheses(h)
    # the share button of a private reply
    resp = h.command("signatures top", user="UBOB")
    h.reply(resp, user="UBOB")
    eph = [e for e in h.ws.ephemeral_for("UBOB") if "Post to channel" in json.dumps(e.get("blocks"))][-1]
    share = next(el for blk in eph["blocks"] if blk.get("block_id") == "share" for el in blk["elements"])
    before = len(h.channel_messages())
    click = h.sim.click_button(
        user="UBOB", action_id="ib:share", ephemeral_ts=eph["ts"], channel=h.channel, value=share["value"]
    )
    h.ws.wait_for(lambda: h.channel_messages()[before:], timeout=10)
    settle(h)
    shared = state(h)
    assert resend(h, click).status == 200
    settle(h)
    assert state(h) == shared and len(h.channel_messages()) == before + 1
    # the resolve form, submitted once and delivered twice
    assert h.command(f"resolve H-{a}").status == 200  # opens the form
    view = h.ws.wait_for(lambda: h.ws.views_for("UALICE"), timeout=5)[-1]
    submit = h.sim.submit_view(
        user="UALICE",
        view_id=view["id"],
        values={"cause": {"value": "bad fan firmware"}, "fix": {"value": "reflashed"}},
    )
    assert submit.status == 200
    # By id: the background analysis may have proposed a hypothesis of its own for the events
    # (every failure mode gets one), so H-a need not be the first.
    eventually(lambda: {i: st for i, st, _ in state(h)["statuses"]}[a] == "resolved")
    settle(h)
    resolved = state(h)
    assert resend(h, submit).status == 200
    settle(h)
    assert state(h) == resolved
    with h.rt.db.read() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(HypothesisLog)
                .where(HypothesisLog.hypothesis_id == a, HypothesisLog.kind == "resolved")
            )
            == 1
        )


def test_an_event_delivered_again_is_dropped_by_its_event_id(slack_harness):
    h = slack_harness
    first = h.sim.send_event({"type": "app_mention", "user": "UBOB", "channel": h.channel, "text": "hi"})
    again = resend(h, first)
    assert again.status == 200 and h.rt.metrics.slack_duplicates.labels("event")._value.get() == 1
    # the same event id with another body is still the same delivery
    changed = dict(first.payload, event_time=first.payload["event_time"] + 5)
    first.payload = changed
    assert resend(h, first).status == 200 and h.rt.metrics.slack_duplicates.labels("event")._value.get() == 2


def test_doing_the_same_thing_twice_still_acts_twice(slack_harness):
    h = slack_harness
    a, b, *_ = setup_hypotheses(h)
    for _ in range(2):  # two commands typed: two trigger ids, two deliveries
        h.reply_text(h.command(f"vote H-{a} H-{b}"))
    settle(h)
    with h.rt.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Poll)) == 2
    assert h.rt.metrics.slack_duplicates.labels("command")._value.get() == 0


def test_delivery_keys_are_kept_an_hour_in_the_database(db):
    from incidentbot.services.deliveries import PREFIX, DeliveryLog

    now = [db and __import__("datetime").datetime(2026, 1, 1, tzinfo=__import__("datetime").timezone.utc)]
    replica_a = DeliveryLog(db, clock=lambda: now[0])
    replica_b = DeliveryLog(db, clock=lambda: now[0])  # another replica: shares nothing but the database
    assert replica_a.first_time("event:Ev1", by="a") is True
    assert replica_b.first_time("event:Ev1", by="b") is False
    now[0] += timedelta(minutes=59)
    assert replica_b.first_time("event:Ev1", by="b") is False
    assert replica_b.first_time("event:Ev2", by="b") is True
    now[0] += timedelta(minutes=2)  # Ev1 is 61 minutes old: a new delivery; the old keys are pruned
    assert replica_a.first_time("event:Ev1", by="a") is True
    now[0] += timedelta(hours=2)
    assert replica_a.first_time("event:Ev3", by="a") is True
    with db.read() as s:
        keys = set(s.scalars(select(WorkClaim.key).where(WorkClaim.key.startswith(PREFIX))))
    assert keys == {PREFIX + "event:Ev3"}
