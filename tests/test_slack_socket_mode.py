"""Socket Mode end to end: the service opens its WebSocket to the local Slack with the app-level
token, commands and button clicks arrive as envelopes and are acknowledged on the socket, and the
HTTP request URL takes nothing when there is no signing secret."""

from __future__ import annotations

import json

import httpx
import pytest

from incidentbot.localslack import SlackSimulator, Workspace, run_in_thread
from tests.conftest import LiveServer, event


@pytest.fixture
def socket_service(db, settings_factory):
    from incidentbot.app import build_app
    from incidentbot.runtime import build_runtime

    ws = Workspace()
    channel = ws.create_channel("gpu-incidents")
    for name in ("alice", "bob"):
        ws.add_user(name, user_id=f"U{name.upper()}")
    server = run_in_thread(ws)
    settings = settings_factory(
        channel=channel,
        slack_bot_token=ws.bot_token,
        slack_app_token=ws.app_token,
        slack_signing_secret=None,
        slack_api_url=server.api_url,
        alert_update_interval=0.5,
        analysis_debounce=0.2,
        scheduler="off",
        admins="UALICE",
    )
    rt = build_runtime(settings, db=db, migrate=False)
    try:
        with LiveServer(build_app(rt, start_workers=True)) as service:
            assert ws.socket_mode.wait_connected(10), "the service did not open its Socket Mode connection"
            sim = SlackSimulator(
                ws,
                bot_url=f"{service.url}/slack/events",
                signing_secret="unused",
                localslack_url=server.url,
                socket_mode=True,
            )
            yield ws, sim, service, channel
            sim.close()
    finally:
        server.stop()


@pytest.fixture
def sqlite_only(db_url):
    # Listed before socket_service so the skip comes before the service starts. What these check
    # (the socket's life, the HTTP refusal, token types) does not depend on the backend.
    if not db_url.startswith("sqlite"):
        pytest.skip("Socket Mode transport checks do not depend on the backend; kept quick on one")


def _reply(sim: SlackSimulator, resp, user: str = "UALICE") -> str:
    body = resp.json
    if isinstance(body, dict) and body.get("blocks"):
        return json.dumps(body)
    return json.dumps(
        sim.wait_for_reply(
            user, lambda r: bool(r.get("blocks")) and "Working on it" not in (r.get("text") or ""), timeout=10
        )
    )


def test_commands_and_buttons_arrive_over_the_socket(socket_service):
    ws, sim, service, channel = socket_service
    assert [c.method for c in ws.calls("apps.connections.open")] == ["apps.connections.open"]

    resp = sim.slash_command("/incident", "help", user="UALICE", channel=channel)
    assert resp.status == 200 and resp.elapsed < 3
    assert all(sub in _reply(sim, resp) for sub in ("list", "show", "vote", "mute"))

    r = httpx.post(
        f"{service.url}/v1/events",
        headers={"Authorization": "Bearer test-token"},
        json={"events": [event(event_id=f"e{i}", host="gpu-node-7", rank=i) for i in range(3)]},
    )
    assert r.status_code == 202
    alert = ws.wait_for(lambda: ws.messages(channel), timeout=10)[0]
    assert "illegal memory access" in json.dumps(alert["blocks"]).lower()

    shown = sim.slash_command("/incident", "show S-1", user="UBOB", channel=channel)
    assert "S-1" in _reply(sim, shown, user="UBOB")

    # Buttons on the alert: each click is an `interactive` envelope, acknowledged on the socket.
    click = sim.click_button(user="UBOB", action_id="ib:show", channel=channel, message_ts=alert["ts"])
    assert click.status == 200 and click.elapsed < 3
    sim.wait_for_reply(
        "UBOB", lambda r: "S-1" in json.dumps(r) and "Working on it" not in (r.get("text") or ""), timeout=10
    )
    sim.click_button(user="UALICE", action_id="ib:mute", channel=channel, message_ts=alert["ts"])
    ws.wait_for(lambda: "muted" in json.dumps(ws.message(channel, alert["ts"])["blocks"]).lower(), timeout=10)


def test_reconnects_when_slack_refreshes_the_socket(sqlite_only, socket_service):
    ws, sim, _service, channel = socket_service
    ws.socket_mode.refresh()
    assert ws.socket_mode.wait_connected(20, opened_at_least=2)
    assert len(ws.calls("apps.connections.open")) >= 2  # a fresh URL each time: tickets are one-use
    resp = sim.slash_command("/incident", "list", user="UALICE", channel=channel)
    assert resp.status == 200
    assert _reply(sim, resp)


def test_http_request_url_refuses_everything_without_a_signing_secret(sqlite_only, socket_service):
    import hashlib
    import hmac
    import time
    from urllib.parse import urlencode

    _ws, _sim, service, channel = socket_service
    # Signed with an empty key: what an unset secret would verify against.
    body = urlencode(
        {"command": "/incident", "text": "merge H-1 H-2", "user_id": "UALICE", "channel_id": channel}
    ).encode()
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(b"", f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    r = httpx.post(
        f"{service.url}/slack/events",
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig,
        },
    )
    assert r.status_code == 404 and "Socket Mode" in r.text


def test_the_app_token_opens_sockets_and_nothing_else(sqlite_only, socket_service):
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    ws, sim, _service, channel = socket_service
    slack_api = sim.localslack_url + "/api/"
    with pytest.raises(SlackApiError) as exc:
        WebClient(token=ws.app_token, base_url=slack_api).chat_postMessage(channel=channel, text="hi")
    assert exc.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as exc:
        WebClient(base_url=slack_api).apps_connections_open(app_token=ws.bot_token)
    assert exc.value.response["error"] == "not_allowed_token_type"
    url = WebClient(base_url=slack_api).apps_connections_open(app_token=ws.app_token)["url"]
    assert url.startswith("ws://") and "ticket=" in url
