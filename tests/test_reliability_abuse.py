"""Abuse: wrong or missing credentials, forged and replayed Slack requests, hostile bodies, mrkdwn and
HTML injection in every text a user or a job controls, and non-admins trying admin subcommands.
Each gets the documented refusal and leaves no trace (rows are counted before and after)."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from sqlalchemy import func, select

from incidentbot.models import (
    Ballot,
    Decision,
    Event,
    Hypothesis,
    HypothesisLog,
    HypothesisSignature,
    Outbox,
    Poll,
    RunbookLink,
    Signature,
)
from tests.conftest import event, eventually

EVIL = "<!channel> <!here> <!everyone> <@UEVIL> <https://evil.example/x|click me> <#C0EVIL> & <script>alert(1)</script>"


def count(db, model) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


# -- the ingest API's credentials -----------------------------------------------------------------

TOKEN_CASES = [
    ("/v1/events", None, 401),
    ("/v1/events", "Bearer", 401),
    ("/v1/events", "Bearer wrong-token", 401),
    ("/v1/events", "Basic dGVzdC10b2tlbjp4", 401),
    ("/v1/events", "Bearer test-token ", 401),
    ("/v1/events", "Bearer am-token", 403),  # an Alertmanager-only token
    ("/v1/events", "Bearer read-token", 403),  # a read-only token
    ("/v1/alertmanager", "Bearer read-token", 403),
    ("/v1/alertmanager", None, 401),
]


def test_ingest_refuses_missing_wrong_and_other_sources_tokens(client, runtime):
    c = httpx.Client(transport=client._transport, base_url=str(client.base_url))  # without the fixture's token
    for path, header, status in TOKEN_CASES:
        body = (
            {"events": [event(event_id="x1")]}
            if path == "/v1/events"
            else {
                "version": "4",
                "status": "firing",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "XidError"},
                        "annotations": {"description": "Xid 79"},
                        "fingerprint": "f1",
                    }
                ],
            }
        )
        headers = {"Authorization": header} if header is not None else {}
        r = c.post(path, json=body, headers=headers)
        assert r.status_code == status, (path, header, r.text)
        assert "detail" in r.json() and "test-token" not in r.text
        if status == 401:
            assert r.headers.get("www-authenticate") == "Bearer"
    assert count(runtime.db, Event) == 0 and count(runtime.db, Signature) == 0 and count(runtime.db, Outbox) == 0


# -- hostile bodies -------------------------------------------------------------------------------


def _raw(client, body: bytes, path: str = "/v1/events"):
    return client.post(path, content=body, headers={"content-type": "application/json"})


HOSTILE = [
    ("oversized", b'{"events": [{"job_id": "j", "message": "' + b"x" * (11 * 1024 * 1024) + b'"}]}', {413}),
    ("deeply nested JSON", b"[" * 200_000 + b"]" * 200_000, {400, 422}),
    (
        "deeply nested attributes",
        json.dumps({"events": [event(attributes=json.loads("[" * 60 + "]" * 60))]}).encode(),
        {400, 422},
    ),
    (
        "nested object attributes",
        json.dumps({"events": [event(extra=json.loads('{"a":' * 60 + "1" + "}" * 60))]}).encode(),
        {400, 422},
    ),
    ("huge integer rank", json.dumps({"events": [event(rank=10**30)]}).encode(), {422}),
    ("5,000-digit integer", b'{"events": [{"job_id": "j", "message": "m", "step": ' + b"9" * 5000 + b"}]}", {400, 422}),
    ("float overflow", b'{"events": [{"job_id": "j", "message": "m", "step": 1e999}]}', {400, 422}),
    (
        "year 670 (unreadable back from SQLite)",
        json.dumps({"events": [event(time="0670-10-13T14:29:53Z")]}).encode(),
        {422},
    ),
    ("year 9999 with an offset", json.dumps({"events": [event(time="9999-12-31T23:59:59-05:00")]}).encode(), {422}),
    ("negative rank", json.dumps({"events": [event(rank=-1)]}).encode(), {422}),
    ("invalid UTF-8", b'{"events": [{"job_id": "j", "message": "\xff\xfe bad \xc3\x28"}]}', {400}),
    ("raw NUL byte inside a string", b'{"events": [{"job_id": "j", "message": "a\x00b"}]}', {400}),
    ("message over 64 KiB", json.dumps({"events": [event(message="x" * (65 * 1024))]}).encode(), {422}),
    ("too many events", json.dumps({"events": [event(event_id=f"e{i}") for i in range(5001)]}).encode(), {413}),
    ("empty batch", b'{"events": []}', {422}),
    ("not an object", b'[{"job_id": "j", "message": "m"}]', {422}),
    ("events not a list", b'{"events": {"job_id": "j"}}', {422}),
    ("string where a number goes", json.dumps({"events": [event(rank="seven")]}).encode(), {422}),
    (
        "one bad event spoils the batch",
        json.dumps({"events": [event(event_id="good"), {"job_id": "", "message": ""}]}).encode(),
        {422},
    ),
    ("empty body", b"", {400}),
    ("not JSON", b"events=1", {400}),
]


def test_hostile_bodies_are_refused_and_store_nothing(client, runtime):
    for name, body, statuses in HOSTILE:
        r = _raw(client, body)
        assert r.status_code in statuses, (name, r.status_code, r.text[:300])
        assert isinstance(r.json().get("detail"), str), name
    assert count(runtime.db, Event) == 0 and count(runtime.db, Signature) == 0


def test_hostile_alertmanager_bodies(client, runtime):
    for body in (
        b"[" * 100_000,
        b'{"version": "4", "alerts": "no"}',
        b'{"alerts": [1, 2]}',
        b"\xff",
        b"null",
        b"1e999",
        b'{"alerts": [{"labels": [1, 2]}]}',
        b'{"alerts": [{"labels": "x", "annotations": []}]}',
    ):
        r = _raw(client, body, "/v1/alertmanager")
        assert r.status_code in (400, 422), (body[:20], r.status_code, r.text[:200])
    assert count(runtime.db, Event) == 0


def test_nul_bytes_and_lone_surrogates_are_stored_cleaned_not_lost(client, runtime):
    body = b'{"events": [{"event_id": "n1", "job_id": "j\\u0000x", "message": "RuntimeError: a\\u0000b \\ud800 c", "host": "h\\udfff"}]}'
    r = _raw(client, body)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 1, "duplicates": 0}
    got = client.get("/v1/events").json()["events"][0]
    assert got["job_id"] == "j\u2400x" and "\u2400" in got["message"] and "\ufffd" in got["message"]
    assert _raw(client, body).json() == {"accepted": 0, "duplicates": 1}


# -- Slack request signing -------------------------------------------------------------------------


def test_unsigned_missigned_and_replayed_slack_requests_have_no_effect(slack_harness):
    h = slack_harness
    from incidentbot.models import Hypothesis as H

    with h.rt.db.write() as s:
        s.add_all([H(title="cause one", cause_class="software"), H(title="cause two", cause_class="software")])
    form = (
        "command=%2Fincident&text=vote+H-1+H-2&user_id=UALICE&channel_id="
        + h.channel
        + "&team_id=T0LOCAL01&response_url=x&trigger_id=t"
    )
    unsigned = httpx.post(h.sim.bot_url, content=form, headers={"content-type": "application/x-www-form-urlencoded"})
    no_ts = httpx.post(
        h.sim.bot_url,
        content=form,
        headers={"content-type": "application/x-www-form-urlencoded", "X-Slack-Signature": "v0=" + "0" * 64},
    )
    future = h.sim.post_signed(form.encode(), extra_headers={"X-Slack-Request-Timestamp": str(int(time.time()) + 600)})
    assert unsigned.status_code == 401 and no_ts.status_code == 401 and future.status == 401
    stale = h.sim.slash_command("/incident", "vote H-1 H-2", user="UALICE", channel=h.channel, stale=True)
    forged = h.sim.slash_command("/incident", "vote H-1 H-2", user="UALICE", channel=h.channel, bad_signature=True)
    assert stale.status == 401 and forged.status == 401
    # A valid request captured and replayed more than five minutes later is refused too.
    body = form.encode()
    old = h.sim.sign(body, timestamp=int(time.time()) - 301)
    replay = httpx.post(
        h.sim.bot_url, content=body, headers={"content-type": "application/x-www-form-urlencoded", **old}
    )
    assert replay.status_code == 401
    # Interactivity (button clicks, modal submissions) is checked the same way.
    payload = json.dumps(
        {"type": "block_actions", "user": {"id": "UALICE"}, "actions": [{"action_id": "ib:mute", "value": "S-1"}]}
    )
    click = h.sim.post_signed(("payload=" + httpx.QueryParams({"p": payload})["p"]).encode(), stale=True)
    assert click.status == 401
    time.sleep(0.3)
    assert count(h.rt.db, Poll) == 0 and count(h.rt.db, Outbox) == 0
    assert h.ws.messages(h.channel) == [] and h.ws.call_count("chat.postMessage") == 0


# -- mrkdwn injection: nothing the bot posts carries a live mention or a foreign link -------------

KNOWN_USERS = {"UALICE", "UBOB", "UCAROL", "UDAVE", "U0BOT0001"}
ALLOWED_TOKENS = [
    re.compile(r"<@(U[A-Z0-9]+)>"),
    re.compile(r"<!date\^\d+\^[^|<>]*\|[^<>|]*>"),
    re.compile(r"<https?://(127\.0\.0\.1:\d+|example\.org)/[^|<>\s]*\|[^<>|]*>"),
]
ENTITY_OK = re.compile(r"&(?!amp;|lt;|gt;)")


def _strings(obj, path=""):
    if isinstance(obj, str):
        s = obj.strip()
        if s.startswith(("{", "[")):
            try:
                yield from _strings(json.loads(s), path)
                return
            except ValueError:
                pass
        yield path, obj
    elif isinstance(obj, dict):
        kind = ":plain" if obj.get("type") == "plain_text" else ""
        for k, v in obj.items():
            yield from _strings(v, f"{path}{kind}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _strings(v, f"{path}[{i}]")


def live_tokens(texts) -> list[tuple[str, str]]:
    """Every angle-bracket token that is not one the bot itself means to send."""
    bad = []
    for path, text in texts:
        if path.endswith(
            (
                ".url",
                ".action_id",
                ".value",
                ".block_id",
                ".private_metadata",
                ".callback_id",
                ".response_url",
                ".trigger_id",
                ".channel",
                ".ts",
                ".thread_ts",
                ".user",
            )
        ):
            continue
        for token in re.findall(r"<[^<>]*>", text):
            m = next((p.fullmatch(token) for p in ALLOWED_TOKENS if p.fullmatch(token)), None)
            if m is None or (token.startswith("<@") and m.group(1) not in KNOWN_USERS):
                bad.append((path, token))
        if ENTITY_OK.search(text) and ":plain." not in path:
            bad.append((path, "bare & " + text[max(0, ENTITY_OK.search(text).start() - 20) :][:60]))
    return bad


def everything_the_bot_sent(h, acks) -> list[tuple[str, str]]:
    texts = []
    for call in h.ws.calls():
        if call.method in (
            "chat.postMessage",
            "chat.update",
            "chat.postEphemeral",
            "views.open",
            "views.update",
            "views.push",
            "response_url",
        ):
            for k in ("text", "blocks", "view", "attachments"):
                if k in call.params:
                    texts.extend(_strings(call.params[k], f"{call.method}.{k}"))
    for a in acks:
        if a.text:
            texts.extend(_strings(a.text, "ack"))
    return texts


def test_injected_text_is_inert_in_every_message_the_bot_posts(slack_harness):
    h = slack_harness
    acks = []
    h.ingest(
        [
            event(
                event_id=f"e{i}",
                job_id=f"{EVIL} job{i % 2}",
                host=f"{EVIL}-host{i % 3}",
                rank=i,
                code_version=EVIL[:100],
                versions={"torch": "<!channel>"},
                message=f"RuntimeError: {EVIL} step {i}",
            )
            for i in range(6)
        ]
        + [event(event_id="t", job_id="job-x", host="<@UEVIL>", message=f"ValueError: {EVIL}\n" + "&lt;" * 1500)]
    )
    eventually(lambda: len(h.channel_messages()) >= 2, timeout=15)
    # Hypotheses whose every text is hostile (titles and evidence come from job and host names).
    with h.rt.db.write() as s:
        hyp = Hypothesis(
            title=f"{EVIL} title",
            cause_class="software",
            evidence=[EVIL, "& " * 2000],
            scope={"hosts": [EVIL, "<@UEVIL>"], "jobs": [EVIL]},
        )
        hyp2 = Hypothesis(title=f"second {EVIL}", cause_class="hardware")
        s.add_all([hyp, hyp2])
        s.flush()
        s.add(HypothesisSignature(hypothesis_id=hyp.id, signature_id=1, event_count=6))
        hid, hid2 = hyp.id, hyp2.id
    for text in (
        f"show H-{hid}",
        "show S-1",
        "show S-2",
        "list",
        "signatures top",
        "signatures new",
        f"runbooks {EVIL}",
        f"show {EVIL}",
        f"frobnicate {EVIL}",
        f"vote H-{hid} H-{hid2} {EVIL} --open",
        f"link H-{hid} {EVIL}",
        f"mute S-1 for {EVIL}",
        f"merge H-{hid} {EVIL}",
        f"split H-{hid} {EVIL}",
        f"vote close {EVIL}",
        f"reject H-{hid2} {EVIL}",
        "help",
    ):
        acks.append(h.command(text))
        h.reply_text(acks[-1])
    poll = h.ws.wait_for(
        lambda: [m for m in h.channel_messages() if '"opt:' in json.dumps(m.get("blocks"))], timeout=10
    )[0]
    opt_block = next(b for b in poll["blocks"] if str(b.get("block_id", "")).startswith("opt:"))
    acks.append(
        h.sim.click_button(
            user="UBOB", action_id="ib:vote", channel=h.channel, message_ts=poll["ts"], block_id=opt_block["block_id"]
        )
    )
    # The resolution form: cause, fix and link are free text.
    acks.append(h.command(f"resolve H-{hid}"))
    view = h.ws.wait_for(lambda: h.ws.views_for("UALICE"), timeout=5)[-1]
    acks.append(
        h.sim.submit_view(
            user="UALICE",
            view_id=view["id"],
            values={
                "cause": {"value": EVIL},
                "fix": {"value": EVIL},
                "fixed_in": {"value": "<!channel>"},
                "link": {"value": "https://example.org/pr/1|<!channel> free GPUs <@UEVIL>"},
            },
        )
    )
    eventually(lambda: h.rt.resolutions and _status(h, hid) == "resolved")
    acks.append(h.command(f"show H-{hid}"))
    h.reply_text(acks[-1])
    # A regression note quotes the hostile resolution in the alert's thread.
    h.ingest([event(event_id="again", job_id="job-late", message="RuntimeError: " + EVIL + " step 99")])
    time.sleep(1.5)
    eventually(lambda: count(h.rt.db, Outbox) > 0 and _pending(h) == 0, timeout=15)
    texts = everything_the_bot_sent(h, acks)
    assert len(texts) > 50
    bad = live_tokens(texts)
    assert not bad, "\n".join(map(repr, bad))
    joined = " ".join(t for _, t in texts)
    assert "&lt;!channel&gt;" in joined and "&lt;@UEVIL&gt;" in joined
    for m in h.ws.messages(h.channel, include_replies=True):
        from incidentbot.localslack import validate_message

        assert not validate_message({"text": m.get("text"), "blocks": m.get("blocks")}), m


def _status(h, hid):
    with h.rt.db.read() as s:
        return s.get(Hypothesis, hid).status


def _pending(h):
    with h.rt.db.read() as s:
        return s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "pending"))


# -- HTML injection in the console's hypothesis pages ---------------------------------------------


@pytest.fixture
def console_app(db, settings_factory):
    from fastapi.testclient import TestClient

    from incidentbot.app import build_app
    from incidentbot.runtime import build_runtime
    from tests.conftest import free_port

    rt = build_runtime(settings_factory(channel="C0INCIDENTS", scheduler="off"), db=db, migrate=False)
    app = build_app(rt, port=free_port(), start_workers=False)
    with TestClient(app, base_url="http://127.0.0.1") as c:  # the console answers to loopback names only
        c.rt = rt
        yield c


HTML_EVIL = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'><a href="javascript:alert(3)">x</a>'


def test_hostile_text_is_inert_in_the_console_hypothesis_page(console_app):
    c, rt = console_app, console_app.rt
    r = c.post(
        "/v1/events",
        headers={"Authorization": "Bearer test-token"},
        json={
            "events": [
                event(
                    event_id=f"h{i}",
                    job_id=HTML_EVIL,
                    host=HTML_EVIL,
                    rank=i,
                    message=f"RuntimeError: {HTML_EVIL} {EVIL}",
                )
                for i in range(4)
            ]
        },
    )
    assert r.status_code == 202
    with rt.db.write() as s:
        hyp = Hypothesis(
            title=HTML_EVIL,
            cause_class="software",
            evidence=[HTML_EVIL, EVIL],
            scope={"hosts": [HTML_EVIL], "jobs": [EVIL]},
        )
        s.add(hyp)
        s.flush()
        s.add(HypothesisSignature(hypothesis_id=hyp.id, signature_id=1, event_count=4))
        hid = hyp.id
    rt.resolutions.resolve(
        hid, cause=HTML_EVIL, fix=EVIL, link='javascript:alert(4)//"><script>', fixed_in=HTML_EVIL, actor="UALICE"
    )
    for path in (f"/h/H-{hid}", f"/h/H-{hid}/chart.svg", "/"):
        page = c.get(path)
        assert page.status_code == 200, (path, page.status_code)
        html = page.text
        assert "<script>alert" not in html and "<img src=x" not in html and "<!channel>" not in html
        assert _live_html(html) == [], path
    page = c.get(f"/h/H-{hid}").text
    assert "&lt;script&gt;" in page


def _live_html(html: str) -> list:
    """Elements or attributes that hostile text could have made live: a script or img element, an
    event-handler attribute, a javascript: URL."""
    from html.parser import HTMLParser

    found = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if (
                (tag == "script" and not (a.get("src") or "").startswith("/console/static/"))
                or tag in ("iframe", "object", "embed")
                or (tag == "img" and a.get("src") == "x")
            ):
                found.append((tag, attrs))
            for name, value in attrs:
                if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                    found.append((tag, name, value))

    P().feed(html)
    return found


# -- non-admins and admin subcommands -------------------------------------------------------------


def _snapshot(db) -> dict:
    with db.read() as s:
        return {
            "hypotheses": [
                (h.id, h.status, h.merged_into, json.dumps(h.resolution, sort_keys=True))
                for h in s.scalars(select(Hypothesis).order_by(Hypothesis.id))
            ],
            "signatures": [
                (g.id, g.merged_into, g.muted_until) for g in s.scalars(select(Signature).order_by(Signature.id))
            ],
            "polls": [(p.id, p.status) for p in s.scalars(select(Poll).order_by(Poll.id))],
            "counts": [
                s.scalar(select(func.count()).select_from(m))
                for m in (Decision, HypothesisLog, HypothesisSignature, RunbookLink, Ballot, Event)
            ],
        }


def test_non_admin_gets_a_polite_refusal_and_nothing_changes(slack_harness):
    h = slack_harness
    h.ingest(
        [
            event(
                event_id=f"a{i}", rank=i, message="RuntimeError: CUDA error: an illegal memory access was encountered"
            )
            for i in range(3)
        ]
        + [
            event(
                event_id=f"b{i}",
                rank=i,
                message="torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            )
            for i in range(3)
        ]
    )
    eventually(lambda: len(h.channel_messages()) >= 2, timeout=15)

    def analysed():
        with h.rt.db.read() as s:
            from incidentbot.models import KeyValue

            row = s.get(KeyValue, "analysis.last_event_id")
            return row is not None and int(row.value) >= 6

    eventually(analysed, timeout=15)
    with h.rt.db.write() as s:
        hs = [Hypothesis(title=f"cause {i}", cause_class="software") for i in range(2)]
        s.add_all(hs)
        s.flush()
        s.add(HypothesisSignature(hypothesis_id=hs[0].id, signature_id=1, event_count=3))
        s.add(HypothesisSignature(hypothesis_id=hs[1].id, signature_id=2, event_count=3))
        h1, h2 = hs[0].id, hs[1].id
    resolved_hid = h2
    h.rt.resolutions.resolve(resolved_hid, cause="known", fix="fixed", link="", fixed_in="", actor="UALICE")
    h.command(f"vote H-{h1} H-{h2}")  # Alice's poll
    poll = h.ws.wait_for(
        lambda: [m for m in h.channel_messages() if "ib:vote_close" in json.dumps(m.get("blocks"))], timeout=10
    )[0]
    eventually(lambda: _pending(h) == 0, timeout=15)
    before = _snapshot(h.rt.db)
    views_before = len(h.ws.views_for("UBOB"))
    for text in (
        f"merge H-{h1} H-{h2}",
        "merge S-1 S-2",
        f"split H-{h1} S-1",
        "unmerge S-1",
        f"resolve H-{h1}",
        f"reject H-{h1} not it",
        f"reopen H-{resolved_hid}",
        "mute S-1",
        "mute S-1 for 24h",
        "unmute S-1",
        "vote close P-1",
    ):
        reply = h.reply_text(h.command(text, user="UBOB"), user="UBOB")
        assert re.search(r"Sorry, only incident admins|only the poll's creator", reply), (text, reply)
        assert "Traceback" not in reply and "Exception" not in reply
    # The same through buttons: mute on the alert, resolve on a hypothesis, close on the poll.
    alert = h.channel_messages()[0]
    for action_id, msg in (("ib:mute", alert), ("ib:vote_close", poll)):
        r = h.sim.click_button(user="UBOB", action_id=action_id, channel=h.channel, message_ts=msg["ts"])
        assert r.status == 200
    time.sleep(1.0)
    eventually(lambda: _pending(h) == 0, timeout=15)
    assert _snapshot(h.rt.db) == before
    assert len(h.ws.views_for("UBOB")) == views_before, "no resolution form for a non-admin"
    # ...while the admin can.
    ok = h.reply_text(h.command("mute S-1"))
    assert "Sorry" not in ok
    assert _snapshot(h.rt.db)["signatures"] != before["signatures"]
