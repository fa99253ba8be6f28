"""The Slack stand-in's parts on their own (localslack/faults.py, ratelimits.py, calllog.py,
responses.py), each with a clock the test moves; tests/test_localslack.py drives them through
the Workspace and its Web API."""

from __future__ import annotations

import pytest

from incidentbot.localslack import CallLog, CallRecord, FaultPlan, RateLimits, ResponseUrls, Workspace


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_fault_plan_counts_uses_and_deadlines():
    clock = Clock()
    plan = FaultPlan(clock=clock)
    plan.fail_next("chat.update", status=500, times=2)
    plan.fail_next(None, status=429)
    assert plan.take("chat.update").status == 500
    assert plan.take("chat.update").status == 500
    assert plan.take("chat.postMessage").retry_after == 1  # 429 says when, by default 1 s
    assert plan.take("chat.update") is None  # known wrong: a used-up fault must not answer again
    plan.fail_for(10, 503, method="response_url")
    assert plan.take("chat.update") is None and plan.take("response_url").status == 503
    clock.now += 10.5
    assert plan.take("response_url") is None
    plan.fail_next(None, status=500, times=5)
    plan.clear()
    assert plan.take("anything") is None


# (calls at times, retry-after expected for each): burst 3, one a second.
RATE_CASES = [
    ([0, 0, 0], [None, None, None]),
    ([0, 0, 0, 0], [None, None, None, 1]),
    ([0, 0, 0, 1], [None, None, None, None]),
    ([0, 0, 0, 0.5], [None, None, None, 1]),
]


@pytest.mark.parametrize("times,expected", RATE_CASES)
def test_rate_limits_are_a_token_bucket_per_method_and_key(times, expected):
    clock = Clock()
    limits = RateLimits(clock=clock)
    assert limits.check("chat.postMessage", "C1") is None  # off until enabled
    limits.enable({"chat.postMessage": (3.0, 1.0)})
    start = clock.now
    got = []
    for t in times:
        clock.now = start + t
        got.append(limits.check("chat.postMessage", "C1"))
    assert got == expected
    assert limits.check("chat.postMessage", "C2") is None  # another channel has its own bucket
    limits.enable({})
    assert limits.check("chat.postMessage", "C1") is None


def test_call_log_filters_by_method_and_params_and_says_each_change():
    changes = []
    log = CallLog(on_change=lambda: changes.append(1))
    log.record(CallRecord(method="chat.update", params={"channel": "C1", "ts": "1.0"}, status=200, ok=True))
    log.record(CallRecord(method="chat.update", params={"channel": "C2", "ts": "1.0"}, status=429, ok=False))
    log.record(CallRecord(method="chat.postMessage", params={"channel": "C1"}, status=200, ok=True))
    assert log.count() == 3 and log.count("chat.update") == 2 and log.count("chat.update", channel="C1") == 1
    assert log.count("chat.update", channel="C3") == 0 and len(changes) == 3


# (what is posted to the response_url, HTTP status, what the channel / the user then shows)
RESPONSE_CASES = [
    ({"text": "private"}, 200, "ephemeral"),
    ({"text": "public", "response_type": "in_channel"}, 200, "channel"),
    ({"text": "edit", "replace_original": "true"}, 200, "edited"),
    ({"delete_original": True}, 200, "deleted"),
]


@pytest.mark.parametrize("body,status,shows", RESPONSE_CASES)
def test_response_url_posts_do_what_slack_does(body, status, shows):
    ws = Workspace()
    cid = ws.create_channel("incidents")
    uid = ws.add_user("alice")
    source = ws.post_message(cid, text="source")
    urls = ResponseUrls(ws, clock=Clock())
    token = urls.new(channel="#incidents", user=uid, message_ts=source["ts"])
    assert urls.use(token, body) == (status, "ok") and urls.uses(token) == 1
    texts = [m["text"] for m in ws.messages(cid)]
    mine = [e["text"] for e in ws.ephemeral_for(uid)]
    assert {
        "ephemeral": (["source"], ["private"]),
        "channel": (["source", "public"], []),
        "edited": (["edit"], []),
        "deleted": ([], []),
    }[shows] == (texts, mine)


def test_response_url_expires_and_wears_out():
    ws = Workspace()
    cid = ws.create_channel("incidents")
    clock = Clock()
    urls = ResponseUrls(ws, clock=clock, ttl=60)
    token = urls.new(channel=cid, user="U1")
    assert urls.use("not-a-token", {"text": "x"}) == (404, "invalid_token")
    assert [urls.use(token, {"text": "x"})[0] for _ in range(6)] == [200] * 5 + [404]  # five uses, then used_url
    fresh = urls.new(channel=cid, user="U1")
    clock.now += 61
    assert urls.use(fresh, {"text": "x"}) == (404, "expired_url")


def test_the_workspace_clock_drives_its_parts():
    ws = Workspace()
    now = [50.0]
    ws.clock = lambda: now[0]  # what tests do: the parts read it at each call
    ws.fail_for(5, 500)
    assert ws.take_fault("chat.update").status == 500
    now[0] += 6
    assert ws.take_fault("chat.update") is None
    token = ws.new_response_url(channel=ws.create_channel("c"), user="U1")
    now[0] += ws.response_url_ttl + 1
    assert ws.use_response_url(token, {"text": "x"}) == (404, "expired_url")
