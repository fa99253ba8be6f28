"""The outbox never posts a message twice: an attempt that dies after Slack took the post leaves
its outcome unknown, and the next attempt looks for the message before posting, whatever error an
earlier attempt recorded. Only a 429 says for certain that nothing was posted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from incidentbot.localslack import Workspace, run_in_thread
from incidentbot.models import Outbox, utcnow
from incidentbot.services.outbox import OutboxWorker, Rendered, enqueue


class Crash(Exception):
    """The process dies between Slack's answer and the database write that records it."""


@pytest.fixture
def slack():
    ws = Workspace()
    channel = ws.create_channel("gpu-incidents")
    server = run_in_thread(ws)
    yield ws, channel, WebClient(token=ws.bot_token, base_url=server.api_url)
    server.stop()


def _worker(db, client, clock):
    return OutboxWorker(
        db, client=client, clock=clock, render=lambda _s, row: Rendered(text=f"alert {row.message_key}", blocks=[])
    )


def _deliver_and_crash(worker: OutboxWorker, monkeypatch) -> None:
    def crash(*_a, **_k):
        raise Crash()

    monkeypatch.setattr(worker, "_finish", crash)
    with pytest.raises(Crash):
        worker.deliver_one()
    monkeypatch.undo()


@pytest.mark.parametrize(
    "first_failure",
    [None, (429, "chat.postMessage"), (500, "chat.postMessage")],
    ids=["no-error-before", "429-before", "500-before"],
)
def test_a_post_that_died_after_slack_took_it_is_not_posted_again(db, slack, monkeypatch, first_failure):
    ws, channel, client = slack
    now = [utcnow() + timedelta(seconds=1)]
    worker = _worker(db, client, lambda: now[0])
    with db.write() as s:
        enqueue(s, op="post", channel=channel, message_key="alert:S-1", dedupe_key="post:alert:S-1", payload={})
    if first_failure:
        status, method = first_failure
        ws.fail_next(method, status=status, retry_after=0)
        assert worker.deliver_one()  # Slack refused: recorded, retried later
        now[0] += timedelta(seconds=400)
    _deliver_and_crash(worker, monkeypatch)  # Slack stored it; the process died before recording it
    assert len(ws.messages(channel)) == 1
    now[0] += timedelta(minutes=2)  # the claim expires; another worker (or the restarted one) takes it
    assert worker.deliver_one()
    assert worker.drain() == 0
    assert len(ws.messages(channel)) == 1, "posted twice"
    with db.read() as s:
        row = s.get(Outbox, 1)
        assert row.status == "done"
    assert ws.calls("conversations.history"), "the retry looked before posting"


def test_a_429_needs_no_look_up(db, slack):
    ws, channel, client = slack
    now = [utcnow() + timedelta(seconds=1)]
    worker = _worker(db, client, lambda: now[0])
    with db.write() as s:
        enqueue(s, op="post", channel=channel, message_key="alert:S-2", dedupe_key="post:alert:S-2", payload={})
    ws.fail_next("chat.postMessage", status=429, retry_after=0)
    worker.deliver_one()
    now[0] += timedelta(seconds=5)
    worker.deliver_one()
    assert len(ws.messages(channel)) == 1
    assert not ws.calls("conversations.history")


def test_rows_backing_off_go_out_as_soon_as_slack_is_back(db, slack):
    ws, channel, client = slack
    now = [utcnow() + timedelta(seconds=1)]
    worker = _worker(db, client, lambda: now[0])
    with db.write() as s:
        for k in range(3):
            enqueue(
                s, op="post", channel=channel, message_key=f"alert:S-{k}", dedupe_key=f"post:alert:S-{k}", payload={}
            )
    ws.fail_for(10**6, 500, method="chat.postMessage")
    for _ in range(6):  # a long outage: each row is retried and backs off further each time
        with db.read() as s:
            now[0] = max(r.next_attempt_at for r in s.scalars(select(Outbox))) + timedelta(seconds=1)
        worker.drain()
    with db.read() as s:
        waits = sorted(r.next_attempt_at for r in s.scalars(select(Outbox)))
    assert waits[-1] - now[0] > timedelta(seconds=20), "the rows are backing off"
    ws.clear_faults()
    # Only the first row's back-off has ended; once it goes through, the others follow at once.
    now[0] = waits[0] + timedelta(seconds=1)
    worker.drain()
    assert len(ws.messages(channel)) == 3
