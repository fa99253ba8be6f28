"""``serve`` from outside: its start-up output names the console and, without Slack
credentials, the local Slack stand-in's Web API URL and token, which the real slack_sdk can use;
an empty database gets no demo events unless ``--demo`` is given; the port has one home."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from incidentbot.server import startup_banner, with_served_url
from incidentbot.settings import load_settings
from tests.conftest import ROOT
from tests.served import Served

READ = {"Authorization": "Bearer test-token"}


def test_banner_names_the_stand_in_and_slack_sdk_talks_to_it(tmp_path):
    with Served(tmp_path) as served:
        assert served.banner_value("console") == f"{served.url}/"
        api = served.banner_value("Slack stand-in API")
        token = served.banner_value("Slack stand-in token")
        assert api == f"{served.url}/localslack/api/" and token.startswith("xoxb-")
        client = WebClient(token=token, base_url=api, timeout=10)
        assert client.auth_test()["ok"] is True
        posted = client.chat_postMessage(channel="#incidents", text="hello from outside")
        assert posted["ok"] and posted["channel"]
        history = client.conversations_history(channel=posted["channel"])
        assert "hello from outside" in [m.get("text") for m in history["messages"]]
        # What Slack refuses, the stand-in refuses through the real client too.
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(
                channel="#incidents",
                text="t",
                blocks=[{"type": "header", "text": {"type": "mrkdwn", "text": "*bold*"}}],
            )
        assert exc.value.response["error"] == "invalid_blocks"
        with pytest.raises(SlackApiError):
            WebClient(token="xoxb-wrong", base_url=api, timeout=10).auth_test()


def test_empty_database_gets_no_demo_events_without_demo(tmp_path):
    with Served(tmp_path) as served:
        time.sleep(3)  # the demo fed its first batches within a second of start
        events = httpx.get(f"{served.url}/v1/events", headers=READ, timeout=10).json()["events"]
        assert events == []
        assert "demo" not in served.banner()


def test_demo_runs_when_asked(tmp_path):
    with Served(tmp_path, args=("--demo",)) as served:
        assert "demo: feeding" in served.banner()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if httpx.get(f"{served.url}/v1/events", headers=READ, timeout=10).json()["events"]:
                break
            time.sleep(0.5)
        else:
            pytest.fail("--demo fed no events within 60 s")


def test_links_follow_the_served_port_unless_a_public_url_is_set(monkeypatch):
    monkeypatch.delenv("INCIDENTBOT_PUBLIC_URL", raising=False)
    s = with_served_url(load_settings(), host="127.0.0.1", port=8123)
    assert s.public_url == "http://127.0.0.1:8123"
    assert with_served_url(load_settings(), host="0.0.0.0", port=9000).public_url == "http://127.0.0.1:9000"
    monkeypatch.setenv("INCIDENTBOT_PUBLIC_URL", "https://incidents.example.org")
    assert with_served_url(load_settings(), host="127.0.0.1", port=8123).public_url == "https://incidents.example.org"


def test_banner_hides_a_database_password():
    s = load_settings(database_url="postgresql+psycopg://bot:s3cret@db:5432/incidents")
    text = startup_banner(s, host="127.0.0.1", port=8000, workspace=None, demo=False)
    assert "s3cret" not in text and "db:5432/incidents" in text


def test_make_run_passes_one_port():
    r = subprocess.run(["make", "-n", "run", "ARGS=--port 8123"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    line = [ln for ln in r.stdout.splitlines() if "incidentbot serve" in ln]
    assert line, r.stdout + r.stderr
    assert line[-1].count("--port") == 1 and "--port 8123" in line[-1] and "--demo" in line[-1]
