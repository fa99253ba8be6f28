"""Channel polls: exact tallies under concurrent clicks, few edits, closing rules, calibration."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy import func, select

from incidentbot.models import Ballot, Hypothesis, Poll, PollOption
from incidentbot.runtime import build_runtime


def make_hypotheses(db, n=2):
    with db.write() as s:
        hs = [
            Hypothesis(title=f"Cause number {i}", cause_class="software", evidence=[f"evidence line {i}"])
            for i in range(n)
        ]
        s.add_all(hs)
        s.flush()
        return [h.id for h in hs]


def poll_message(h):
    msgs = [m for m in h.channel_messages() if "Vote" in json.dumps(m.get("blocks"))]
    return msgs[-1] if msgs else None


def test_fifty_concurrent_voters_give_an_exact_tally_with_few_edits(slack_harness):
    h = slack_harness
    h1, h2 = make_hypotheses(h.rt.db)
    users = [h.ws.add_user(f"voter{i}", user_id=f"UV{i:03}") for i in range(50)]
    resp = h.command(f"vote H-{h1} H-{h2} Is this one bug or two? --open")
    assert "P-1" in h.reply_text(resp)
    msg = h.ws.wait_for(lambda: poll_message(h), timeout=10)
    with h.rt.db.read() as s:
        options = list(s.scalars(select(PollOption).where(PollOption.poll_id == 1).order_by(PollOption.position)))
    assert [o.kind for o in options] == ["hypothesis", "hypothesis", "one_cause", "separate", "other"]
    rng = random.Random(7)
    plan = {}  # user -> list of option ids clicked in order
    for u in users:
        clicks = [rng.choice(options).id]
        if rng.random() < 0.3:
            clicks.append(clicks[0])  # double click on the same option
        if rng.random() < 0.3:
            clicks.append(rng.choice(options).id)  # a change of mind
        plan[u] = clicks

    def vote(user):
        for oid in plan[user]:
            r = h.sim.click_button(
                user=user, action_id="ib:vote", channel=h.channel, message_ts=msg["ts"], block_id=f"opt:{oid}"
            )
            assert r.status == 200

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(vote, users))
    expected = {o.id: 0 for o in options}
    for clicks in plan.values():
        expected[clicks[-1]] += 1
    with h.rt.db.read() as s:
        got = dict(s.execute(select(Ballot.option_id, func.count()).group_by(Ballot.option_id)).all())
        assert s.scalar(select(func.count()).select_from(Ballot)) == 50
    assert {k: v for k, v in expected.items() if v} == got

    def shown_counts():
        blocks = {b.get("block_id"): b for b in h.ws.message(h.channel, msg["ts"])["blocks"]}
        return {o.id: int(blocks[f"opt:{o.id}"]["text"]["text"].split("` ")[1].split()[0]) for o in options}

    h.ws.wait_for(lambda: shown_counts() == expected, timeout=20)
    assert "50 votes" in json.dumps(h.ws.message(h.channel, msg["ts"])["blocks"])
    edits = h.ws.edit_count(h.channel, msg["ts"])
    assert 1 <= edits <= 10, f"{edits} edits for 50 voters: the tally edit is debounced"


def test_closing_rules_and_late_clicks(slack_harness):
    h = slack_harness
    h1, h2 = make_hypotheses(h.rt.db)
    h.command(f"vote H-{h1} H-{h2}")
    msg = h.ws.wait_for(lambda: poll_message(h), timeout=10)
    refused = h.command("vote close P-1", user="UBOB")
    assert "only the poll's creator" in h.reply_text(refused, user="UBOB")
    with h.rt.db.read() as s:
        assert s.get(Poll, 1).status == "open"
    closed = h.command("vote close P-1")
    assert "Closed P-1" in h.reply_text(closed)
    with h.rt.db.read() as s:
        opt = s.scalars(select(PollOption).where(PollOption.poll_id == 1)).first()
    h.sim.click_button(
        user="UCAROL",
        action_id="ib:vote",
        channel=h.channel,
        message_ts=msg["ts"],
        block_id=f"opt:{opt.id}",
        strict=False,
        value=f"1:{opt.id}",
    )
    reply = h.sim.wait_for_reply("UCAROL", lambda r: "closed" in json.dumps(r), timeout=10)
    assert "closed" in json.dumps(reply)
    with h.rt.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Ballot)) == 0
    # The closed poll shows its final result without vote buttons.
    h.ws.wait_for(lambda: "Vote" not in json.dumps(h.ws.message(h.channel, msg["ts"])["blocks"]), timeout=10)


class FakeClock:
    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now


def test_deadline_closes_the_poll_after_a_restart(db, settings_factory):
    clock = FakeClock(datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc))
    rt = build_runtime(settings_factory(), db=db, migrate=False, clock=clock)
    h1, h2 = make_hypotheses(db)
    pid = rt.votes.create(
        creator="UALICE", channel=None, hypothesis_ids=[h1, h2], closes_at=clock.now + timedelta(hours=2)
    )
    assert rt.votes.close_due() is False
    # "Restart": a new runtime, later.
    clock2 = FakeClock(clock.now + timedelta(hours=3))
    rt2 = build_runtime(settings_factory(), db=db, migrate=False, clock=clock2)
    assert rt2.votes.close_due() is True
    assert rt2.votes.close_due() is False
    with db.read() as s:
        assert s.get(Poll, pid).status == "closed"


def test_calibration_matches_a_hand_computation(db, settings_factory):
    rt = build_runtime(settings_factory(), db=db, migrate=False)
    h1, h2, h3 = make_hypotheses(db, 3)
    pid = rt.votes.create(creator="UALICE", channel=None, hypothesis_ids=[h1, h2, h3], anonymous=False)
    with db.read() as s:
        opts = {
            o.kind + str(o.hypothesis_id or ""): o.id
            for o in s.scalars(select(PollOption).where(PollOption.poll_id == pid))
        }
    # 5 for H1, 3 for H2, 1 for H3 (the truth), 1 for "one cause"
    ballots = {
        "U1": f"hypothesis{h1}",
        "U2": f"hypothesis{h1}",
        "U3": f"hypothesis{h1}",
        "U4": f"hypothesis{h1}",
        "U5": f"hypothesis{h1}",
        "U6": f"hypothesis{h2}",
        "U7": f"hypothesis{h2}",
        "U8": f"hypothesis{h2}",
        "U9": f"hypothesis{h3}",
        "U10": "one_cause",
    }
    for user, key in ballots.items():
        rt.votes.cast(poll_id=pid, user=user, option_id=opts[key])
    rt.resolutions.resolve(h3, cause="torch.sum bug upstream", fix="pin torch", actor="UALICE")
    with db.read() as s:
        outcome = s.get(Poll, pid).outcome
        assert outcome["truth"] == f"H-{h3}"
        assert outcome["share_for_truth"] == 0.1  # 1 of 10
        assert outcome["room_right"] is False
        assert outcome["underdog"] is True  # fewest votes of the hypotheses, and it was right
        right = rt.votes.voter_stats(s, "U9")
        wrong = rt.votes.voter_stats(s, "U1")
        room = rt.votes.room_stats(s)
    assert (right.polls, right.hits, right.brier) == (1, 1, 0.0)
    assert (wrong.polls, wrong.hits, wrong.brier) == (1, 0, 2.0)
    assert room == {"scored": 1, "room_right": 0, "underdog_wins": [f"P-{pid}"], "mean_share_for_truth": 0.1}


def _click_option(h, msg, option_id: int, user: str):
    h.sim.click_button(
        user=user, action_id="ib:vote", channel=h.channel, message_ts=msg["ts"], block_id=f"opt:{option_id}"
    )


def test_open_ballot_deadline_show_outcome_and_stats_through_slack(slack_harness):
    h = slack_harness
    h1, h2 = make_hypotheses(h.rt.db)
    posted = h.reply_text(h.command(f"vote H-{h1} H-{h2} Which one? --open --closes 2h"))
    assert "P-1" in posted and "closes" in posted
    msg = h.ws.wait_for(lambda: poll_message(h), timeout=10)
    assert "closes" in json.dumps(msg["blocks"]) and "open ballot" in json.dumps(msg["blocks"])
    with h.rt.db.read() as s:
        opts = {
            o.hypothesis_id: o.id
            for o in s.scalars(select(PollOption).where(PollOption.poll_id == 1))
            if o.hypothesis_id
        }
    # Two for H1, one (Carol) for H2: an open ballot shows who voted what.
    for user, hyp in (("UALICE", h1), ("UBOB", h1), ("UCAROL", h2)):
        _click_option(h, msg, opts[hyp], user)
    h.ws.wait_for(lambda: "<@UCAROL>" in json.dumps(h.ws.message(h.channel, msg["ts"])["blocks"]), timeout=10)
    # The poll is on the hypothesis.
    assert "P-1" in h.reply_text(h.command(f"show H-{h1}"))
    # H2, with the fewest votes, turns out to be the cause: the channel message says so in place.
    h.rt.resolutions.resolve(h2, cause="the least-voted one", actor="UALICE")
    h.ws.wait_for(lambda: "Underdog win" in json.dumps(h.ws.message(h.channel, msg["ts"])["blocks"]), timeout=10)
    # Each voter's record, privately.
    assert "1 resolved open-ballot polls: 1 right (100%)" in h.reply_text(
        h.command("vote stats", user="UCAROL"), user="UCAROL"
    )
    assert "0 right (0%)" in h.reply_text(h.command("vote stats", user="UBOB"), user="UBOB")


def test_anonymous_poll_never_shows_who_voted(slack_harness):
    h = slack_harness
    h1, h2 = make_hypotheses(h.rt.db)
    h.command(f"vote H-{h1} H-{h2}")
    msg = h.ws.wait_for(lambda: poll_message(h), timeout=10)
    with h.rt.db.read() as s:
        opt = s.scalars(select(PollOption).where(PollOption.poll_id == 1, PollOption.hypothesis_id == h1)).one()
    _click_option(h, msg, opt.id, "UBOB")
    h.ws.wait_for(lambda: "1 vote" in json.dumps(h.ws.message(h.channel, msg["ts"])["blocks"]), timeout=10)
    blocks = json.dumps(h.ws.message(h.channel, msg["ts"])["blocks"])
    assert "UBOB" not in blocks and "anonymous" in blocks
    assert "UBOB" not in json.dumps(h.reply(h.command("show P-1")))
    listed = httpx.get(f"{h.service.url}/v1/polls", headers={"Authorization": "Bearer read-token"}).json()
    assert listed["polls"] and "UBOB" not in json.dumps(listed)


def test_a_deadline_closes_the_poll_through_the_workers_and_the_message_says_so(slack_harness):
    h = slack_harness
    h1, h2 = make_hypotheses(h.rt.db)
    assert "closes" in h.reply_text(h.command(f"vote H-{h1} H-{h2} Quick one --closes 2s"))
    msg = h.ws.wait_for(lambda: poll_message(h), timeout=10)
    # No one closes it: the background job does, and the message loses its buttons.
    h.ws.wait_for(lambda: "Close poll" not in json.dumps(h.ws.message(h.channel, msg["ts"])["blocks"]), timeout=15)
    with h.rt.db.read() as s:
        assert s.get(Poll, 1).status == "closed"
    assert "closed" in json.dumps(h.ws.message(h.channel, msg["ts"])["blocks"])
