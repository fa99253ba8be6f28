"""INCIDENTBOT_CHANNEL: ids or #names, several comma-separated; alerts go to the first, digests to
each; names become ids at start (Slack edits messages by channel id only)."""

from __future__ import annotations

import json

import pytest
from slack_sdk import WebClient

from incidentbot.localslack import Workspace, run_in_thread
from incidentbot.settings import SettingsError, load_settings
from incidentbot.slack.channels import resolve_channel_names


@pytest.mark.parametrize(
    "value,expected",
    [
        ("C0123ABCDEF", ["C0123ABCDEF"]),
        ("#gpu-incidents", ["#gpu-incidents"]),
        (" gpu-incidents , C0123ABCDEF ,", ["gpu-incidents", "C0123ABCDEF"]),
        ("", []),
    ],
)
def test_channel_values(value, expected):
    s = load_settings(channel=value)
    assert s.channels == expected
    assert s.alert_channel == (expected[0] if expected else None)


@pytest.mark.parametrize("value", ["gpu incidents", "#General", "<#C0123|x>", "@channel", "C0123,<!here>"])
def test_bad_channel_values_name_the_variable(value):
    with pytest.raises(SettingsError) as exc:
        load_settings(channel=value)
    assert "INCIDENTBOT_CHANNEL" in str(exc.value) and "channel id" in str(exc.value)


@pytest.fixture
def slack():
    ws = Workspace()
    server = run_in_thread(ws)
    yield ws, WebClient(token=ws.bot_token, base_url=server.api_url)
    server.stop()


def test_names_become_ids(slack):
    ws, client = slack
    incidents = ws.create_channel("gpu-incidents")
    fleet = ws.create_channel("fleet-weekly")
    s = resolve_channel_names(load_settings(channel=f"#gpu-incidents,{fleet}"), client)
    assert s.channels == [incidents, fleet] and s.alert_channel == incidents
    untouched = load_settings(channel=incidents)
    assert resolve_channel_names(untouched, client) is untouched
    assert len(ws.calls("conversations.list")) == 1  # ids need no look-up


def test_unknown_name_is_a_settings_error(slack):
    ws, client = slack
    ws.create_channel("gpu-incidents")
    with pytest.raises(SettingsError) as exc:
        resolve_channel_names(load_settings(channel="#gpu-incident"), client)
    assert "INCIDENTBOT_CHANNEL" in str(exc.value) and "#gpu-incident" in str(exc.value)


def test_look_up_impossible_keeps_names(slack, caplog):
    ws, _client = slack
    bad = WebClient(token="xoxb-wrong", base_url=_client.base_url)
    s = resolve_channel_names(load_settings(channel="#gpu-incidents"), bad)
    assert s.channels == ["#gpu-incidents"]
    assert "channels:read" in caplog.text


def test_alerts_go_to_the_first_channel(db, settings_factory, slack):
    from incidentbot.app import SlackSetup, build_app
    from incidentbot.runtime import build_runtime
    from tests.conftest import LiveServer, event

    ws, client = slack
    first, second = ws.create_channel("gpu-incidents"), ws.create_channel("fleet-weekly")
    rt = build_runtime(settings_factory(channel=f"{first},{second}", scheduler="off"), db=db, migrate=False)
    app = build_app(rt, slack=SlackSetup(client=client, signing_secret="s"), start_workers=True)
    with LiveServer(app) as service:
        import httpx

        r = httpx.post(
            f"{service.url}/v1/events",
            json={"events": [event(event_id="a1")]},
            headers={"Authorization": "Bearer test-token"},
        )
        assert r.status_code == 202
        alert = ws.wait_for(lambda: ws.messages(first), timeout=10)
        assert "illegal memory access" in json.dumps(alert[0]["blocks"]).lower()
        assert ws.messages(second) == []
