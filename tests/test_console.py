"""The local browser console without a browser: mrkdwn → HTML, the SVG chart, the HTML routes,
escaping, the console token, the demo feeder, and commands/clicks through the real service."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from incidentbot.console.chart import timeline_svg
from incidentbot.console.mrkdwn import mrkdwn
from tests.conftest import LiveServer, free_port

EVIL = "RuntimeError: <script>alert(1)</script> & <img src=x onerror=alert(2)>"


def slack_esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- mrkdwn ---------------------------------------------------------------------------------------


def test_mrkdwn_formats_and_stays_text():
    users = {"U1": "alice"}.get
    html = str(
        mrkdwn(
            "*Bold* and _it_ and ~gone~ `x<y` see <https://example.com/a?b=1&amp;c=2|the docs> "
            "cc <@U1> <!here> :wrench:\n```line <1>\nline 2```",
            users=users,
        )
    )
    assert "<b>Bold</b>" in html and "<i>it</i>" in html and "<s>gone</s>" in html
    assert "<code>x&lt;y</code>" in html
    assert '<a href="https://example.com/a?b=1&amp;c=2"' in html and ">the docs</a>" in html
    assert '<span class="mention">@alice</span>' in html and "@here" in html
    assert "🔧" in html and "<br>" in html
    assert "<pre>line &lt;1&gt;\nline 2</pre>" in html


def test_mrkdwn_never_injects_html():
    html = str(mrkdwn(slack_esc(EVIL)))
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&amp;" in html
    # even text that was NOT Slack-escaped cannot make a tag: angle tokens become links or text
    raw = str(
        mrkdwn(
            "<script>alert(1)</script> <javascript:alert(1)|x> <img src=x onerror=alert(1)> "
            '<https://a.example/"onmouseover=x|y>'
        )
    )
    assert "<script" not in raw and "<img" not in raw and "javascript" not in raw
    assert '<a href="https://a.example/&quot;onmouseover=x"' in raw and raw.count("<") == raw.count("</a>") * 2
    assert "\x00" not in str(mrkdwn("a\x00b *c*"))


def test_mrkdwn_keeps_identifiers_and_dates():
    html = str(
        mrkdwn(
            "Compile with `TORCH_USE_CUDA_DSA` or TORCH_USE_CUDA_DSA and a*b*c "
            "<!date^1700000000^{date_short_pretty}|2023-11-14 22:13 UTC>"
        )
    )
    assert "<i>" not in html and "<b>" not in html
    assert '<time class="date">2023-11-14 22:13 UTC</time>' in html


def test_mrkdwn_rewrites_public_urls():
    html = str(mrkdwn("<http://bot.example/h/H-1|timeline>", rewrite_url=lambda u: u.replace("http://bot.example", "")))
    assert 'href="/h/H-1"' in html


# -- chart ----------------------------------------------------------------------------------------


def test_timeline_svg_has_points_per_signature_over_time_and_steps():
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
    svg = str(
        timeline_svg(
            {
                "S-1": [(t0 + timedelta(minutes=i), 100 * i) for i in range(30)],
                "S-2": [(t0 + timedelta(minutes=5), None)],
            },
            titles={"S-1": "<b>evil</b>"},
            standalone=True,
        )
    )
    assert svg.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert len(re.findall(r'<circle class="pt"[^>]*data-axis="time"', svg)) >= 2
    assert re.search(r'<circle class="pt"[^>]*data-signature="S-1"[^>]*data-axis="step"', svg)
    assert "<b>evil" not in svg and "&lt;b&gt;evil" in svg
    empty = str(timeline_svg({}))
    assert "no time data" in empty


# -- the service ------------------------------------------------------------------------------------


def sim_events(n: int = 600) -> list[dict]:
    from incidentbot.console.demo import demo_events

    return demo_events()[:n]


@pytest.fixture
def console_app(db, settings_factory):
    """build_app without credentials (so with the console), served by TestClient; no workers."""
    from fastapi.testclient import TestClient

    from incidentbot.app import build_app
    from incidentbot.runtime import build_runtime

    rt = build_runtime(settings_factory(channel="C0INCIDENTS", scheduler="off"), db=db, migrate=False)
    app = build_app(rt, port=free_port(), start_workers=False)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        c.rt, c.ws = rt, app.state.slack.workspace
        open_console(c, "http://127.0.0.1")
        yield c


def open_console(client, origin: str) -> str:
    """What the console page gives a browser: its session cookie (kept by `client`) and the CSRF
    token in the page; the client then sends both, and the Origin a browser would send."""
    page = client.get("/")
    assert page.status_code == 200, page.text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)
    client.headers.update({"Origin": origin, "X-CSRF-Token": token})
    return token


def console_client(service) -> httpx.Client:
    client = httpx.Client(base_url=service.url, timeout=60)
    open_console(client, service.url)
    return client


def test_console_page_renders_channel_blocks_threads_edits_and_ephemeral(console_app):
    c, ws = console_app, console_app.ws
    alice = next(u["id"] for u in ws.users() if u["name"] == "alice")
    bob = next(u["id"] for u in ws.users() if u["name"] == "bob")
    parent = ws.post_message(
        "C0INCIDENTS",
        text="alert",
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": "S-1 · <b>NCCL</b> watchdog"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Events*\n50"}]},
            {"type": "section", "text": {"type": "mrkdwn", "text": "```" + slack_esc(EVIL) + "```"}},
            {"type": "divider"},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "opened by <@" + alice + ">"}]},
            {
                "type": "actions",
                "block_id": "alert:S-1",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Mute 24h"},
                        "action_id": "ib:mute",
                        "value": "S-1",
                    },
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "View timeline"},
                        "action_id": "ib:link",
                        "url": f"{c.rt.settings.public_url}/h/H-1",
                    },
                ],
            },
        ],
    )
    ws.post_message("C0INCIDENTS", text="spread to 3 jobs", thread_ts=parent["ts"])
    ws.update_message("C0INCIDENTS", parent["ts"], text="alert v2")
    ws.post_ephemeral("C0INCIDENTS", alice, text="just for *alice*")
    ws.post_ephemeral("C0INCIDENTS", bob, text="just for bob")
    r = c.get("/?user=alice")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "S-1 · &lt;b&gt;NCCL&lt;/b&gt; watchdog" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page and "<img src=x" not in page
    assert "(edited)" in page and "1 reply" in page and "spread to 3 jobs" in page
    assert "Only visible to you" in page and "just for <b>alice</b>" in page and "just for bob" not in page
    assert '<span class="mention">@alice</span>' in page
    assert 'name="action_id" value="ib:mute"' in page and 'href="/h/H-1"' in page
    assert 'src="/console/static/console.js"' in page
    assert "just for bob" in c.get("/?user=bob").text
    state = c.get("/console/state", params={"user": "alice"}).json()
    assert state["version"] == ws.version and "Mute 24h" in state["feed_html"] and state["modal_html"].strip() == ""
    assert c.get("/console/static/console.js").status_code == 200
    assert c.get("/console/static/console.css").status_code == 200


def test_modal_renders_inputs_and_errors(console_app):
    c, ws = console_app, console_app.ws
    from incidentbot.slack.modals import resolve_modal

    alice = next(u["id"] for u in ws.users() if u["name"] == "alice")
    view = ws.open_view(alice, resolve_modal(3, "GPU <fell> off the bus"))
    ws.set_view_errors(view["id"], {"cause": "Say what caused it."})
    html = c.get("/console/state", params={"user": "alice"}).json()["modal_html"]
    assert "Resolve H-3" in html and "off the bus" in html and "<fell>" not in html
    assert "<textarea" in html and "Say what caused it." in html and "modal-submit" in html
    assert 'name="field:[&#34;cause&#34;, &#34;value&#34;]"' in html or "field:[&quot;cause&quot;" in html
    assert c.get("/console/state", params={"user": "bob"}).json()["modal_html"].strip() == ""


def test_hypothesis_page_chart_and_404(console_app):
    c = console_app
    evil = dict(sim_events(1)[0], event_id="evil-1", message=EVIL)
    r = c.post("/v1/events", json={"events": sim_events() + [evil]}, headers={"Authorization": "Bearer test-token"})
    assert r.status_code == 202
    created = c.post("/v1/analyze", headers={"Authorization": "Bearer test-token"}).json()["created"]
    assert created, "the simulated scenario forms hypotheses"
    hid = created[0]
    page = c.get(f"/h/{hid}")
    assert page.status_code == 200
    html = page.text
    for section in (
        'id="evidence"',
        'id="scope"',
        'id="signatures"',
        'id="votes"',
        'id="runbook"',
        'id="resolution"',
        'id="log"',
    ):
        assert section in html
    assert '<svg class="timeline-chart"' in html and 'data-axis="time"' in html and 'data-axis="step"' in html
    assert len(re.findall(r'<circle class="pt"', html)) >= 2
    svg = c.get(f"/h/{hid}/chart.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "<circle" in svg.text
    for bad in ("H-99999", "S-1", "nonsense", "H-0"):
        nf = c.get(f"/h/{bad}")
        assert nf.status_code == 404 and "Not found" in nf.text
    assert c.get("/h/<script>x").status_code == 404
    assert "<script>x" not in c.get("/h/%3Cscript%3Ex").text


def test_console_token_is_accepted_by_ingest_and_never_shown(console_app):
    c = console_app
    token = c.app.state.console_token
    assert token and len(token) >= 32
    r = c.post("/v1/events", json={"events": sim_events(5)}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 202
    assert (
        c.post("/v1/events", json={"events": sim_events(5)}, headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert token not in c.get("/").text and token not in c.get("/console/state").text


def test_console_is_not_mounted_with_real_slack(db, settings_factory):
    from fastapi.testclient import TestClient

    from incidentbot.app import build_app
    from incidentbot.runtime import build_runtime

    rt = build_runtime(
        settings_factory(slack_bot_token="xoxb-real", slack_signing_secret="s3cret", scheduler="off"),
        db=db,
        migrate=False,
    )
    app = build_app(rt, port=free_port(), start_workers=False)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        for path in ("/", "/h/H-1", "/console/state", "/console/static/console.js"):
            assert c.get(path).status_code == 404, path
        assert c.post("/console/command", data={"user": "alice", "text": "/incident list"}).status_code in (404, 405)
        assert getattr(app.state, "console_token", None) is None


def test_cross_origin_posts_are_refused(console_app):
    r = console_app.post(
        "/console/command",
        data={"user": "alice", "text": "hello"},
        headers={"Origin": "http://evil.example", "Accept": "application/json"},
    )
    assert r.status_code == 403


# -- the real service on loopback -----------------------------------------------------------------


class PortServer(LiveServer):
    def __init__(self, app, port: int):
        import threading

        import uvicorn

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)


@pytest.fixture
def console_service(db, settings_factory):
    """The whole service (API, Bolt, workers, local Slack, console) on a free loopback port."""
    from incidentbot.app import build_app
    from incidentbot.runtime import build_runtime

    port = free_port()
    settings = settings_factory(
        channel="C0INCIDENTS",
        alert_update_interval=0.5,
        analysis_debounce=0.2,
        scheduler="off",
        public_url=f"http://127.0.0.1:{port}",
    )
    rt = build_runtime(settings, db=db, migrate=False)
    app = build_app(rt, port=port, start_workers=True)
    with PortServer(app, port) as server:
        server.rt, server.app, server.ws = rt, app, app.state.slack.workspace
        yield server


AUTH = {"Authorization": "Bearer test-token"}


def post_json(client: httpx.Client, path: str, **data) -> httpx.Response:
    return client.post(path, json=data, headers={"Accept": "application/json"}, timeout=30)


def ingest(service, events):
    r = httpx.post(
        f"{service.url}/v1/events", json={"events": events}, headers={"Authorization": "Bearer test-token"}, timeout=60
    )
    assert r.status_code == 202, r.text


def test_command_click_and_submit_go_through_the_bot(console_service):
    s, ws = console_service, console_service.ws
    b = console_client(s)
    alice = next(u["id"] for u in ws.users() if u["name"] == "alice")
    r = post_json(b, "/console/command", user="alice", text="/incident list")
    assert r.status_code == 200 and r.json()["ok"]
    eph = ws.wait_for(
        lambda: [e for e in ws.ephemeral_for(alice) if "open hypotheses" in e["text"].lower()], timeout=10
    )
    assert eph
    # form posts without JavaScript redirect back to the console
    csrf = b.headers.pop("X-CSRF-Token")  # a form sent without JavaScript carries the token as a field
    r = b.post("/console/command", data={"csrf": csrf, "user": "alice", "text": "hello <b>team</b>"})
    b.headers["X-CSRF-Token"] = csrf
    assert r.status_code == 303 and r.headers["location"].startswith("/?")
    msg = ws.wait_for(lambda: [m for m in ws.messages("C0INCIDENTS") if "hello" in m["text"]])[0]
    assert msg["text"] == "hello &lt;b&gt;team&lt;/b&gt;"
    assert post_json(b, "/console/command", user="alice", text="/nope").status_code == 400

    ingest(s, sim_events())
    assert httpx.post(f"{s.url}/v1/analyze", headers=AUTH, timeout=60).json()["created"]
    r = post_json(b, "/console/command", user="alice", text="/incident vote")
    assert r.json()["ok"]
    poll = ws.wait_for(lambda: [m for m in ws.messages("C0INCIDENTS") if m["text"].startswith("Poll ")], timeout=15)[0]
    block = next(b for b in poll["blocks"] if b.get("accessory", {}).get("action_id") == "ib:vote")
    r = post_json(
        b,
        "/console/click",
        user="bob",
        channel="C0INCIDENTS",
        message_ts=poll["ts"],
        action_id="ib:vote",
        block_id=block["block_id"],
    )
    assert r.status_code == 200 and r.json()["ok"]
    ws.wait_for(lambda: "1 vote" in json.dumps(ws.message("C0INCIDENTS", poll["ts"])["blocks"]), timeout=15)
    assert (
        post_json(
            b, "/console/click", user="bob", channel="C0INCIDENTS", message_ts=poll["ts"], action_id="ib:nothing"
        ).status_code
        == 404
    )

    # a modal: open the resolve form, submit it empty (errors), then filled (closes)
    hid = httpx.get(f"{s.url}/v1/hypotheses", headers=AUTH).json()["hypotheses"][0]["id"]
    assert post_json(b, "/console/command", user="alice", text=f"/incident resolve {hid}").json()["ok"]
    view = ws.wait_for(lambda: ws.views_for(alice), timeout=10)[-1]
    r = post_json(b, "/console/submit", user="alice", view_id=view["id"], values={"cause": {"value": ""}})
    assert r.json()["errors"].get("cause")
    r = b.post(
        "/console/submit",
        headers={"Accept": "application/json"},
        data={
            "user": "alice",
            "view_id": view["id"],
            'field:["cause", "value"]': "bad <fan> firmware",
            'field:["fix", "value"]': "reflashed",
        },
    )
    assert r.json()["ok"] and not ws.views_for(alice)
    detail = httpx.get(f"{s.url}/v1/hypotheses/{hid}", headers=AUTH).json()
    assert detail["resolution"]["cause"] == "bad <fan> firmware"
    page = httpx.get(f"{s.url}/h/{hid}").text
    assert "bad &lt;fan&gt; firmware" in page and "P-1" in page


def test_demo_feeds_events_over_the_ingest_api_and_analyzes(console_service):
    from incidentbot.console.demo import start_demo

    task = start_demo(
        console_service.rt,
        port=console_service.port,
        token=console_service.app.state.console_token,
        seconds=1.5,
        interval=0.1,
    )
    try:
        assert task.finished.wait(60), "demo did not finish"
    finally:
        task.stop()
    assert task.error is None and task.sent == len(task.events) and task.analyses >= 1
    hyps = httpx.get(f"{console_service.url}/v1/hypotheses", headers=AUTH).json()["hypotheses"]
    assert hyps
    console_service.ws.wait_for(lambda: console_service.ws.messages("C0INCIDENTS"), timeout=15)


def test_demo_stops_promptly(console_service):
    from incidentbot.console.demo import start_demo

    task = start_demo(
        console_service.rt,
        port=console_service.port,
        token=console_service.app.state.console_token,
        seconds=60,
        interval=0.3,
    )
    time.sleep(0.5)
    started = time.monotonic()
    task.stop()
    assert not task.running and time.monotonic() - started < 5
    assert task.sent < len(task.events)


def test_demo_fallback_scenario_is_valid():
    from incidentbot.console.demo import _fallback_events
    from incidentbot.ingest import validate_batch

    events, errors = validate_batch(_fallback_events())
    assert not errors and len(events) == 156
