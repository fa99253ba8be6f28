"""Floods stay bounded: unique texts post a few alerts and one roll-up, not an alert each; polls
are delivered before an alert backlog; delivered edits are pruned; a clock in 2199 cannot pin a
signature's last_seen. Both backends."""

from __future__ import annotations

import random
import string
from datetime import datetime, timedelta, timezone

from conftest import eventually
from sqlalchemy import func, select

from incidentbot.ingest.schema import EventIn
from incidentbot.models import Event, NewSignatureQuota, Outbox, Signature, utcnow
from incidentbot.services.alert_quota import NewSignaturePolicy
from incidentbot.services.ingest import IngestService
from incidentbot.services.outbox import enqueue, priority_of, prune_delivered


def _unique_texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9))) for _ in range(5000)]
    return [" ".join(rng.choices(words, k=6)) + " failed" for _ in range(n)]


def _events(texts, *, job="job-flood", start=0):
    return [EventIn(event_id=f"e{start + i}-{job}", job_id=job, message=t) for i, t in enumerate(texts)]


def _alerts_and_rollups(db):
    with db.read() as s:
        rows = list(s.scalars(select(Outbox).where(Outbox.op == "post")))
    alerts = [r for r in rows if (r.payload or {}).get("render") == "signature_alert"]
    rollups = [r for r in rows if (r.payload or {}).get("render") == "signature_rollup"]
    return alerts, rollups


def test_a_flood_of_unique_texts_posts_a_few_alerts_and_one_rollup(db):
    svc = IngestService(db, channel="C1", alert_policy=NewSignaturePolicy(per_job=5, total=30))
    texts = _unique_texts(3000)
    for i in range(0, len(texts), 500):
        svc.ingest(_events(texts[i : i + 500], start=i))
    with db.read() as s:
        n_sigs = s.scalar(select(func.count()).select_from(Signature))
        quota = s.scalars(select(NewSignatureQuota).where(NewSignatureQuota.job_id == "job-flood")).one()
    alerts, rollups = _alerts_and_rollups(db)
    assert n_sigs > 100  # the texts really are many failure modes to the grouping
    assert len(alerts) == 5
    assert len(rollups) == 1
    assert quota.announced == 5 and quota.rolled == n_sigs - 5
    assert len(quota.sample) == 10
    # Growth of the roll-up edits the one message (at most one edit waits), it does not repost.
    with db.read() as s:
        edits = s.scalar(
            select(func.count())
            .select_from(Outbox)
            .where(Outbox.op == "update", Outbox.message_key == rollups[0].message_key, Outbox.status == "pending")
        )
    assert edits == 1


def test_a_flood_spread_over_many_job_ids_is_bounded_by_the_total(db):
    svc = IngestService(db, channel="C1", alert_policy=NewSignaturePolicy(per_job=2, total=12))
    texts = _unique_texts(600, seed=3)
    events = [EventIn(event_id=f"m{i}", job_id=f"job-{i % 150}", message=t) for i, t in enumerate(texts)]
    for i in range(0, len(events), 200):
        svc.ingest(events[i : i + 200])
    alerts, rollups = _alerts_and_rollups(db)
    assert len(alerts) + len(rollups) <= 12 + 1  # the total, and one service-wide roll-up beyond it
    with db.read() as s:
        service_row = s.scalars(select(NewSignatureQuota).where(NewSignatureQuota.job_id.is_(None))).one()
        n_sigs = s.scalar(select(func.count()).select_from(Signature))
        rolled = s.scalar(select(func.sum(NewSignatureQuota.rolled)))
    assert service_row.rolled > 0
    assert len(alerts) + rolled == n_sigs  # every new signature is either alerted or counted


def test_the_quota_starts_again_in_the_next_window(db):
    now = [datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)]
    svc = IngestService(db, channel="C1", clock=lambda: now[0], alert_policy=NewSignaturePolicy(per_job=3, total=30))
    svc.ingest(_events(_unique_texts(200, seed=1), job="j"))
    now[0] += timedelta(minutes=11)
    svc.ingest([EventIn(event_id=f"n{i}", job_id="j", message=t) for i, t in enumerate(_unique_texts(200, seed=2))])
    alerts, rollups = _alerts_and_rollups(db)
    assert len(alerts) == 6 and len(rollups) == 2


def test_ordinary_new_signatures_still_get_their_alerts(db):
    svc = IngestService(db, channel="C1", alert_policy=NewSignaturePolicy())
    svc.ingest(
        [
            EventIn(
                event_id="x1",
                job_id="j1",
                message="NVRM: Xid (PCI:0000:91:00): 79, pid=1896, GPU has fallen off the bus.",
            ),
            EventIn(
                event_id="x2", job_id="j1", message="RuntimeError: CUDA error: an illegal memory access was encountered"
            ),
        ]
    )
    alerts, rollups = _alerts_and_rollups(db)
    assert len(alerts) == 2 and not rollups


def test_a_resent_id_with_other_text_makes_no_signature_and_no_alert(db):
    svc = IngestService(db, channel="C1")
    svc.ingest([EventIn(event_id="dup", job_id="j1", message="ValueError: first text")])
    result = svc.ingest(
        [
            EventIn(event_id="dup", job_id="j1", message="KeyError: a different text under a resent id"),
            EventIn(event_id="new", job_id="j1", message="ValueError: first text"),
        ]
    )
    assert (result.accepted, result.duplicates, result.new_signature_ids) == (1, 1, [])
    alerts, _ = _alerts_and_rollups(db)
    with db.read() as s:
        counts = sorted(s.scalars(select(Signature.count)))
    assert counts == [2] and len(alerts) == 1


def test_polls_and_answers_go_before_an_alert_backlog(db):
    with db.write() as s:
        for i in range(120):
            enqueue(
                s,
                op="post",
                channel="C1",
                message_key=f"alert:S-{i}",
                dedupe_key=f"post:alert:S-{i}",
                payload={"render": "signature_alert", "signature_id": i},
            )
        enqueue(
            s,
            op="post",
            channel="C1",
            message_key="poll:P-1",
            dedupe_key="post:poll:P-1",
            payload={"render": "poll", "poll_id": 1},
        )
        enqueue(
            s,
            op="post",
            channel="C1",
            message_key="digest:C1:2026-W48",
            dedupe_key="digest:C1:2026-W48",
            payload={"render": "digest", "week": "2026-W48"},
        )
    from incidentbot.services.outbox import OutboxWorker, Rendered

    sent: list[str] = []

    class Client:
        def chat_postMessage(self, **kw):
            sent.append(kw["text"])
            return {"ts": f"{len(sent)}.0"}

    worker = OutboxWorker(db, client=Client(), render=lambda _s, row: Rendered(text=row.message_key, blocks=[]))
    worker.deliver_one()
    worker.deliver_one()
    assert sent == ["poll:P-1", "digest:C1:2026-W48"]


def test_priority_table():
    cases = [  # (op, payload, priority)
        ("ephemeral", {}, 0),
        ("post", {"render": "poll"}, 1),
        ("post", {"render": "digest"}, 2),
        ("post", {"render": "hypothesis"}, 3),
        ("post", {"render": "signature_rollup"}, 5),  # after the alerts it follows
        ("post", {"render": "signature_alert"}, 5),
        ("post", {"text": "a thread note"}, 5),
        ("update", {"render": "poll"}, 1),
    ]
    for op, payload, expected in cases:
        assert priority_of(op, payload) == expected, (op, payload)


def test_delivered_edits_are_pruned_and_dedupe_records_kept(db):
    old = utcnow() - timedelta(hours=2)
    with db.write() as s:
        for i in range(30):
            s.add(Outbox(op="update", message_key=f"alert:S-{i}", payload={}, status="done", delivered_at=old))
        s.add(
            Outbox(
                op="post",
                message_key="alert:S-1",
                dedupe_key="post:alert:S-1",
                payload={},
                status="done",
                delivered_at=old,
            )
        )
        s.add(Outbox(op="update", message_key="alert:S-2", payload={}, status="done", delivered_at=utcnow()))
        s.add(Outbox(op="update", message_key="alert:S-3", payload={}, status="pending"))
    assert prune_delivered(db, limit=20) == 20
    assert prune_delivered(db, limit=20) == 10
    assert prune_delivered(db) == 0
    with db.read() as s:
        left = {(r.op, r.status, r.dedupe_key) for r in s.scalars(select(Outbox))}
    assert left == {("post", "done", "post:alert:S-1"), ("update", "done", None), ("update", "pending", None)}


def test_times_far_ahead_or_impossibly_old_are_stored_at_receive_time(db):
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    svc = IngestService(db, clock=lambda: now, max_time_skew=timedelta(days=1))
    cases = [  # (sent time, stored at receive time?)
        (datetime(2199, 1, 1, tzinfo=timezone.utc), True),
        (datetime(1970, 1, 2, tzinfo=timezone.utc), True),
        (now + timedelta(hours=23), False),
        (now - timedelta(hours=23), False),
        (now + timedelta(days=2), True),
        (now - timedelta(days=60), False),  # a replayed log or a backfill is history, kept as sent
    ]
    result = svc.ingest(
        [EventIn(event_id=f"t{i}", job_id="j", message="ValueError: clock", time=t) for i, (t, _) in enumerate(cases)]
    )
    assert result.accepted == 6 and result.time_adjusted == 3
    with db.read() as s:
        stored = {e.event_id: (e.time, e.sent_time) for e in s.scalars(select(Event))}
        sig = s.scalars(select(Signature)).one()
    for i, (sent, adjusted) in enumerate(cases):
        t, kept = stored[f"t{i}"]
        assert (t == now and kept == sent) if adjusted else (t == sent and kept is None), (i, t, kept)
    assert sig.last_seen < datetime(2027, 1, 1, tzinfo=timezone.utc)


def test_the_api_reply_counts_adjusted_times(client):
    r = client.post(
        "/v1/events", json={"events": [{"job_id": "j", "message": "ValueError: x", "time": "2199-01-01T00:00:00Z"}]}
    )
    assert r.status_code == 202 and r.json() == {"accepted": 1, "duplicates": 0, "time_adjusted": 1}


def test_a_rollup_reaches_the_channel_through_the_real_app(slack_harness):
    h = slack_harness
    texts = _unique_texts(40, seed=11)  # more than the default 10 a job gets per window
    h.ingest([{"job_id": "job-<!channel>", "message": t} for t in texts])
    msgs = eventually(
        lambda: [m for m in h.channel_messages() if "more new failure modes" in (m.get("text") or "")], timeout=20
    )
    assert len(msgs) == 1
    assert "<!channel>" not in msgs[0]["text"]  # the job id is escaped, it pings nobody
    alerts = eventually(
        lambda: [m for m in h.channel_messages() if (m.get("text") or "").startswith("New failure signature")],
        timeout=20,
    )
    assert len(alerts) == 10
    texts_in_order = [m.get("text") or "" for m in h.channel_messages()]
    assert "more new failure modes" in texts_in_order[-1]  # the roll-up follows the alerts it continues
