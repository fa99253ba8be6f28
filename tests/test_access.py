"""Open doors (issue 17): every /v1 route needs a token, /metrics is counts only for loopback or a
token, unusable token settings are refused at start, failed authentications are counted and
audited, and the local console refuses cross-origin and foreign-Host requests."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from incidentbot.models import Event, Poll, Signature
from incidentbot.settings import SettingsError, load_settings
from tests.conftest import LiveServer, event, free_port

SECRET_TEXT = "RuntimeError: secret-failure-text-4711 in /home/alice/train.py"


def count(db, model) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def _apps(db, settings_factory):
    """The whole service as deployed: console mode (no Slack credentials) and Slack mode."""
    from incidentbot.app import build_app
    from incidentbot.runtime import build_runtime

    console = build_runtime(settings_factory(channel="C0INCIDENTS", scheduler="off"), db=db, migrate=False)
    yield "console", build_app(console, port=free_port(), start_workers=False)
    slack = build_runtime(
        settings_factory(
            channel="C0INCIDENTS", scheduler="off", slack_bot_token="xoxb-1", slack_signing_secret="s3cret"
        ),
        db=db,
        migrate=False,
    )
    yield "slack", build_app(slack, port=free_port(), start_workers=False)


def _v1_requests(app):
    # Routes live in included APIRouters (incidentbot/api/routes/): FastAPI's walk goes into them.
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.path.startswith("/v1"):
            path = route.path.replace("{sid}", "S-1").replace("{hid}", "H-1")
            for method in sorted(route.methods):
                yield method, path


HEADERS_WITHOUT_A_VALID_TOKEN = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Basic dGVzdC10b2tlbjp4"},
    {"Authorization": "bearer test-token-but-longer"},
]


def test_every_v1_route_needs_a_token(db, settings_factory):
    walked = set()
    for mode, app in _apps(db, settings_factory):
        with TestClient(app, base_url="http://127.0.0.1") as c:
            # something to reveal, stored the legitimate way
            assert (
                c.post(
                    "/v1/events",
                    json={"events": [event(event_id="e1", message=SECRET_TEXT)]},
                    headers={"Authorization": "Bearer test-token"},
                ).status_code
                == 202
            )
            for method, path in _v1_requests(app):
                walked.add((method, path))
                for headers in HEADERS_WITHOUT_A_VALID_TOKEN:
                    body = {"events": [event(event_id=f"x-{path}")]} if method == "POST" else None
                    r = c.request(method, path, json=body, headers=headers)
                    assert r.status_code == 401, (mode, method, path, headers, r.status_code, r.text[:200])
                    assert r.headers.get("www-authenticate") == "Bearer"
                    assert "secret-failure-text" not in r.text
    # the walk saw every read the issue names, and analyze
    for needed in [
        ("GET", "/v1/events"),
        ("GET", "/v1/signatures"),
        ("GET", "/v1/hypotheses"),
        ("GET", "/v1/runbooks"),
        ("GET", "/v1/polls"),
        ("POST", "/v1/analyze"),
        ("GET", "/v1/signatures/S-1"),
        ("GET", "/v1/hypotheses/H-1"),
        ("POST", "/v1/events"),
        ("POST", "/v1/alertmanager"),
    ]:
        assert needed in walked
    assert count(db, Event) == 1  # only the authorised one; analyze never ran (no hypothesis rows needed)


READ_TOKENS = [("Bearer test-token", 200), ("Bearer read-token", 200), ("Bearer am-token", 200)]


def test_reads_work_with_a_read_token(client, runtime):
    c = httpx.Client(transport=client._transport, base_url=str(client.base_url))
    for header, status in READ_TOKENS:
        for path in ("/v1/events", "/v1/signatures", "/v1/hypotheses", "/v1/runbooks", "/v1/polls"):
            assert c.get(path, headers={"Authorization": header}).status_code == status, (path, header)
    assert c.post("/v1/analyze", headers={"Authorization": "Bearer read-token"}).status_code == 200


# (token scope, route scope, allowed): the access helper's table, the console's credential
# (scope events) being one row like any other; known-wrong rows refused.
SCOPE_CASES = [
    (None, "events", True),
    (None, "metrics", True),
    ("events", "events", True),
    ("events", "read", True),
    ("events", "alertmanager", False),
    ("events", "metrics", False),
    ("alertmanager", "read", True),
    ("alertmanager", "events", False),
    ("read", "read", True),
    ("read", "events", False),
    ("metrics", "metrics", True),
    ("metrics", "read", False),
]


@pytest.mark.parametrize("scope,wanted,allowed", SCOPE_CASES)
def test_a_credential_allows_its_scope_and_what_it_implies(runtime, scope, wanted, allowed):
    from fastapi import HTTPException
    from starlette.requests import Request

    from incidentbot.api.auth import Credential, Credentials

    creds = Credentials.for_settings(
        runtime.settings, metrics=runtime.metrics, extra=[Credential.of("extra-token", scope=scope, who="a test's own")]
    )
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/v1/x",
            "headers": [(b"authorization", b"Bearer extra-token")],
            "client": ("127.0.0.1", 1),
        }
    )
    if allowed:
        assert creds.authorize(request, wanted) == (scope or "any")
    else:
        with pytest.raises(HTTPException) as refused:
            creds.authorize(request, wanted)
        assert refused.value.status_code == 403


@pytest.mark.parametrize("scope", ["console", "Events", ""])
def test_a_credential_of_an_unknown_scope_is_refused_when_built(scope):
    from incidentbot.api.auth import Credential

    with pytest.raises(ValueError, match="unknown scope"):
        Credential.of("t", scope=scope, who="x")


def test_failed_authentications_are_counted_and_audited(client, caplog):
    c = httpx.Client(transport=client._transport, base_url=str(client.base_url))
    with caplog.at_level(logging.WARNING, logger="incidentbot.audit"):
        assert c.get("/v1/events").status_code == 401
        assert c.get("/v1/events", headers={"Authorization": "Bearer guess-1"}).status_code == 401
        assert c.get("/v1/hypotheses/H-99", headers={"Authorization": "Bearer guess-2"}).status_code == 401
        assert (
            c.post("/v1/events", json={"events": [event()]}, headers={"Authorization": "Bearer read-token"}).status_code
            == 403
        )
    audit = [r.getMessage() for r in caplog.records if r.name == "incidentbot.audit"]
    assert len(audit) == 4, audit
    assert all("authentication refused" in line for line in audit)
    assert any("/v1/hypotheses/{hid}" in line and ": invalid" in line for line in audit)
    assert not any("guess" in line for line in audit), "the token sent is never logged"
    metrics = client.get("/metrics").text
    assert 'incidentbot_auth_failures_total{reason="missing"} 1.0' in metrics
    assert 'incidentbot_auth_failures_total{reason="invalid"} 2.0' in metrics
    assert 'incidentbot_auth_failures_total{reason="wrong_scope"} 1.0' in metrics
    # by route template, so made-up paths cannot grow the label set
    assert 'incidentbot_requests_refused_total{path="/v1/hypotheses/{hid}",reason="unauthorized"} 1.0' in metrics


def test_metrics_counts_only_for_loopback_or_a_metrics_token(db, settings_factory):
    from incidentbot.api import create_app
    from incidentbot.runtime import build_runtime

    rt = build_runtime(
        settings_factory(ingest_tokens="test-token,metrics:scrape-token,read:read-token"), db=db, migrate=False
    )
    app = create_app(rt)
    with LiveServer(app) as server:
        r = httpx.post(
            f"{server.url}/v1/events",
            json={"events": [event(message=SECRET_TEXT, job_id="job-secret")]},
            headers={"Authorization": "Bearer test-token"},
        )
        assert r.status_code == 202
        scraped = httpx.get(f"{server.url}/metrics")  # a loopback peer, a loopback Host
        assert scraped.status_code == 200 and "incidentbot_events_total" in scraped.text
        assert "secret-failure-text" not in scraped.text and "job-secret" not in scraped.text
        # a page that rebound its own name to 127.0.0.1 sends that name: no free pass
        assert httpx.get(f"{server.url}/metrics", headers={"Host": f"evil.example:{server.port}"}).status_code == 401
    with TestClient(app, base_url="http://127.0.0.1") as c:  # the peer is not loopback ("testclient")
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer scrape-token"}).status_code == 200
        assert c.get("/metrics", headers={"Authorization": "Bearer read-token"}).status_code == 403
        assert c.get("/metrics", headers={"Authorization": "Bearer test-token"}).status_code == 200
        # and the metrics token reads nothing else
        assert c.get("/v1/events", headers={"Authorization": "Bearer scrape-token"}).status_code == 403


# -- unusable token settings ------------------------------------------------------------------

BAD_TOKEN_SETTINGS = [
    ("INCIDENTBOT_INGEST_TOKENS", "ingest_tokens", "tökén"),
    ("INCIDENTBOT_INGEST_TOKENS", "ingest_tokens", "good-one,events:s\u00e9cret"),
    ("INCIDENTBOT_INGEST_TOKENS", "ingest_tokens", "abc\u00a0def"),  # a non-breaking space
    ("INCIDENTBOT_INGEST_TOKENS", "ingest_tokens", "\u201cquoted\u201d"),  # pasted smart quotes
    ("INCIDENTBOT_INGEST_TOKENS", "ingest_tokens", "two words"),
    ("INCIDENTBOT_INGEST_TOKENS", "ingest_tokens", "events:"),
    ("SLACK_BOT_TOKEN", "slack_bot_token", "xoxb-\u2011dash"),
    ("SLACK_SIGNING_SECRET", "slack_signing_secret", "s\u00e9cret"),
    ("SLACK_APP_TOKEN", "slack_app_token", "xapp-1 2"),
]
GOOD_TOKEN_SETTINGS = [
    "",
    "a",
    "a,b",
    " events:x , alertmanager:y,read:z,metrics:m ",
    "unknown:prefix-is-a-token",
    "t0k3n!#$%&'()*+-./:;<=>?@[]^_`{|}~",
]


@pytest.mark.parametrize("var,field,value", BAD_TOKEN_SETTINGS)
def test_unusable_tokens_are_refused_naming_the_variable(tmp_path, var, field, value):
    with pytest.raises(SettingsError) as info:
        load_settings(database_url=f"sqlite:///{tmp_path}/x.db", **{field: value})
    message = str(info.value)
    assert var in message and ("ASCII" in message or "SCOPE:TOKEN" in message), message
    secret = value.rpartition(":")[2]
    assert not secret or secret not in message, "a secret is never echoed"


@pytest.mark.parametrize("value", GOOD_TOKEN_SETTINGS)
def test_usable_tokens_are_accepted(tmp_path, value):
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/x.db", ingest_tokens=value)
    assert all(t.isascii() for t in settings.token_sources())


def test_serve_refuses_a_non_ascii_token_at_start(tmp_path):
    env = {
        **os.environ,
        "INCIDENTBOT_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "INCIDENTBOT_INGEST_TOKENS": "events:tökén",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "incidentbot", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "INCIDENTBOT_INGEST_TOKENS" in proc.stderr and "ASCII" in proc.stderr and "tökén" not in proc.stderr


# -- the local console: CSRF and DNS rebinding ------------------------------------------------


@pytest.fixture
def console(db, settings_factory):
    from incidentbot.app import build_app
    from incidentbot.runtime import build_runtime
    from tests.test_console import PortServer

    port = free_port()
    settings = settings_factory(channel="C0INCIDENTS", scheduler="off", public_url="https://ib.example.org")
    rt = build_runtime(settings, db=db, migrate=False)
    app = build_app(rt, port=port, start_workers=False)
    with PortServer(app, port) as server:
        server.rt, server.ws = rt, app.state.slack.workspace
        yield server


def _csrf(client: httpx.Client) -> str:
    import re

    page = client.get("/")
    assert page.status_code == 200
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)


def _channel_state(server):
    return len(server.ws.messages("C0INCIDENTS")), count(server.rt.db, Poll)


def test_console_refuses_cross_site_and_rebinding_requests(console):
    s = console
    here = f"127.0.0.1:{s.port}"
    browser = httpx.Client(base_url=s.url, timeout=30)
    token = _csrf(browser)
    before = _channel_state(s)
    cases = [
        ("Origin: null", {"Origin": "null", "X-CSRF-Token": token}, 403),
        ("no Origin", {"X-CSRF-Token": token}, 403),
        ("foreign Origin", {"Origin": "http://evil.example", "X-CSRF-Token": token}, 403),
        ("Origin on another port", {"Origin": "http://127.0.0.1:1", "X-CSRF-Token": token}, 403),
        ("no CSRF token", {"Origin": f"http://{here}"}, 403),
        ("wrong CSRF token", {"Origin": f"http://{here}", "X-CSRF-Token": "0" * 32}, 403),
        (
            "foreign Host (DNS rebinding)",
            {"Host": f"evil.example:{s.port}", "Origin": f"http://evil.example:{s.port}", "X-CSRF-Token": token},
            400,
        ),
    ]
    for text in ("/incident vote", "hello from elsewhere"):
        for name, headers, status in cases:
            r = browser.post("/console/command", data={"user": "alice", "text": text}, headers=headers)
            assert r.status_code == status, (name, r.status_code, r.text)
    # a form from another site cannot carry the cookie's token, and a cookie-less client has none
    stranger = httpx.Client(base_url=s.url, timeout=30)
    r = stranger.post(
        "/console/command",
        data={"user": "alice", "text": "/incident vote", "csrf": token},
        headers={"Origin": f"http://{here}"},
    )
    assert r.status_code == 403
    for path in ("/console/click", "/console/submit", "/console/close"):
        assert browser.post(path, data={"user": "alice"}, headers={"Origin": "null"}).status_code == 403
    assert _channel_state(s) == before, "nothing was posted and no poll was made"
    # the same request, same-origin with the token, goes through
    r = browser.post(
        "/console/command",
        data={"user": "alice", "text": "hello from here"},
        headers={"Origin": f"http://{here}", "X-CSRF-Token": token, "Accept": "application/json"},
    )
    assert r.status_code == 200 and r.json()["ok"]
    assert len(s.ws.messages("C0INCIDENTS")) == before[0] + 1


FOREIGN_HOSTS = [
    "evil.example",
    "evil.example:{port}",
    "127.0.0.1.evil.example:{port}",
    "localhost.evil.example",
    "[::2]:{port}",
    "",
    "ib.example.org.evil:{port}",
]
ALLOWED_HOSTS = [
    "127.0.0.1:{port}",
    "localhost:{port}",
    "LOCALHOST:{port}",
    "[::1]:{port}",
    "ib.example.org",
    "ib.example.org:443",
]


def test_every_console_mode_request_needs_an_allowed_host(console):
    s = console
    with httpx.Client(base_url=s.url, timeout=30) as c:
        for host in FOREIGN_HOSTS:
            h = host.format(port=s.port)
            for path in (
                "/",
                "/console/state",
                "/h/H-1",
                "/v1/events",
                "/localslack/state/wait?after=0&timeout=0",
                "/healthz",
                "/console/static/console.js",
            ):
                r = c.get(path, headers={"Host": h})
                assert r.status_code == 400, (h, path, r.status_code)
        for host in ALLOWED_HOSTS:
            assert c.get("/healthz", headers={"Host": host.format(port=s.port)}).status_code == 200, host


def test_console_reads_need_the_console_session(console):
    s = console
    stranger = httpx.Client(base_url=s.url, timeout=30)
    assert stranger.get("/console/state").status_code == 403
    assert stranger.get("/console/state", cookies={"incidentbot_console": "forged.0123"}).status_code == 403
    browser = httpx.Client(base_url=s.url, timeout=30)
    _csrf(browser)
    assert browser.get("/console/state").status_code == 200
    # the session is the console's own: it opens no /v1 route
    assert browser.get("/v1/events").status_code == 401
    assert s.rt.metrics.auth_failures.labels("console_session")._value.get() == 2
