"""Tests for the local Slack stand-in, over real HTTP on loopback with slack_sdk's real WebClient."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI, Request
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from incidentbot.localslack import SlackSimulator, Workspace, create_app, run_in_thread

SECRET = "test-signing-secret"


def section(text: str, **extra) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button_block(text: str = "Vote", action_id: str = "vote", value: str = "1", block_id: str = "b1") -> dict:
    return {
        "type": "actions",
        "block_id": block_id,
        "elements": [
            {"type": "button", "action_id": action_id, "value": value, "text": {"type": "plain_text", "text": text}}
        ],
    }


@pytest.fixture
def ws() -> Workspace:
    w = Workspace()
    w.add_user("alice", user_id="U0ALICE")
    w.add_user("bob", user_id="U0BOB")
    w.create_channel("gpu-incidents", channel_id="C0INC")
    return w


@pytest.fixture
def server(ws):
    s = run_in_thread(ws)
    yield s
    s.stop()


@pytest.fixture
def client(ws, server) -> WebClient:
    return WebClient(token=ws.bot_token, base_url=server.api_url)


def api_error(exc_info) -> str:
    return exc_info.value.response["error"]


# ---------------------------------------------------------------------- auth


def test_auth_test_ok(ws, client):
    r = client.auth_test()
    assert r["ok"] and r["user_id"] == ws.bot_user_id and r["team_id"] == ws.team_id and r["bot_id"] == ws.bot_id


def test_bad_token_is_invalid_auth(server):
    with pytest.raises(SlackApiError) as ei:
        WebClient(token="xoxb-wrong", base_url=server.api_url).auth_test()
    assert api_error(ei) == "invalid_auth"
    assert ei.value.response.status_code == 200


def test_missing_token_is_not_authed(server):
    with pytest.raises(SlackApiError) as ei:
        WebClient(base_url=server.api_url).chat_postMessage(channel="C0INC", text="x")
    assert api_error(ei) == "not_authed"


def test_token_as_form_param(ws, server):
    r = httpx.post(server.api_url + "auth.test", data={"token": ws.bot_token})
    assert r.json()["ok"] is True


# ---------------------------------------------------------------------- chat


def test_post_update_thread_reply(ws, client):
    r = client.chat_postMessage(channel="C0INC", text="incident", blocks=[section("*NCCL timeout*")])
    ts = r["ts"]
    assert r["channel"] == "C0INC" and r["message"]["text"] == "incident"
    u = client.chat_update(channel="C0INC", ts=ts, text="incident (2)", blocks=[section("*NCCL timeout* x2")])
    assert u["ts"] == ts
    assert ws.edit_count("C0INC", ts) == 1
    assert ws.message("C0INC", ts)["blocks"][0]["text"]["text"] == "*NCCL timeout* x2"
    assert ws.call_count("chat.update", channel="C0INC", ts=ts) == 1

    reply = client.chat_postMessage(channel="C0INC", thread_ts=ts, text="looking")
    assert float(reply["ts"]) > float(ts)
    assert [m["text"] for m in ws.replies("C0INC", ts)] == ["looking"]
    assert [m["ts"] for m in ws.messages("C0INC")] == [ts]  # replies are not top-level

    rep = client.conversations_replies(channel="C0INC", ts=ts)
    assert [m["text"] for m in rep["messages"]] == ["incident (2)", "looking"]
    hist = client.conversations_history(channel="C0INC")
    assert [m["ts"] for m in hist["messages"]] == [ts]
    assert hist["messages"][0]["reply_count"] == 1

    # chat.* with blocks goes as JSON; the call log shows what the client really sent
    assert ws.calls("chat.postMessage")[0].content_type.startswith("application/json")


def test_channel_by_name_and_ts_unique_and_monotonic(ws, client):
    tss = [client.chat_postMessage(channel="#gpu-incidents", text=str(i))["ts"] for i in range(20)]
    assert len(set(tss)) == 20
    assert tss == sorted(tss, key=float)
    assert all(len(t.split(".")[1]) == 6 for t in tss)


def test_update_missing_message(client):
    with pytest.raises(SlackApiError) as ei:
        client.chat_update(channel="C0INC", ts="1.000001", text="x")
    assert api_error(ei) == "message_not_found"


def test_unknown_channel(client):
    with pytest.raises(SlackApiError) as ei:
        client.chat_postMessage(channel="C0NOPE", text="x")
    assert api_error(ei) == "channel_not_found"
    with pytest.raises(SlackApiError) as ei:
        client.conversations_info(channel="C0NOPE")
    assert api_error(ei) == "channel_not_found"


def test_51_blocks_invalid(ws, client):
    with pytest.raises(SlackApiError) as ei:
        client.chat_postMessage(channel="C0INC", text="x", blocks=[section(f"b{i}") for i in range(51)])
    assert api_error(ei) == "invalid_blocks"
    assert ei.value.response["response_metadata"]["messages"]
    client.chat_postMessage(channel="C0INC", text="x", blocks=[section(f"b{i}") for i in range(50)])


def test_button_text_76_rejected(client):
    with pytest.raises(SlackApiError) as ei:
        client.chat_postMessage(channel="C0INC", text="x", blocks=[button_block(text="x" * 76)])
    assert api_error(ei) == "invalid_blocks"
    client.chat_postMessage(channel="C0INC", text="x", blocks=[button_block(text="x" * 75)])


@pytest.mark.parametrize(
    "blocks",
    [
        [section("x" * 3001)],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
        [button_block(value="v" * 2001)],
        [button_block(action_id="a" * 256)],
        [section("x", block_id="b" * 256)],
        [{"type": "actions", "elements": [button_block(action_id=f"a{i}")["elements"][0] for i in range(26)]}],
        [{"type": "no_such_block"}],
        # What Slack refuses beyond the size limits: a header with mrkdwn text, a header over
        # 150 characters, one action_id twice in a block, one block_id twice in a message.
        [{"type": "header", "text": {"type": "mrkdwn", "text": "*H-1* regressed"}}],
        [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        [{"type": "actions", "elements": [button_block(action_id="ib:vote")["elements"][0]] * 2}],
        [section("a", block_id="same"), section("b", block_id="same")],
    ],
)
def test_block_kit_limits(client, blocks):
    with pytest.raises(SlackApiError) as ei:
        client.chat_postMessage(channel="C0INC", text="x", blocks=blocks)
    assert api_error(ei) == "invalid_blocks"


def test_what_slack_accepts_is_accepted(client):
    """The known-good twins of the refusals above."""
    client.chat_postMessage(
        channel="C0INC",
        text="x",
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
            {"type": "actions", "elements": [button_block(action_id=a)["elements"][0] for a in ("ib:a", "ib:b")]},
            {"type": "actions", "elements": [button_block(action_id="ib:a")["elements"][0]]},  # same id, other block
            section("a", block_id="one"),
            section("b", block_id="two"),
        ],
    )


def test_text_limits(client):
    with pytest.raises(SlackApiError) as ei:
        client.chat_postMessage(channel="C0INC", text="x" * 40_001)
    assert api_error(ei) == "msg_too_long"
    with pytest.raises(SlackApiError) as ei, pytest.warns(UserWarning):
        client.chat_postMessage(channel="C0INC", text="")
    assert api_error(ei) == "no_text"


def test_form_encoded_blocks_are_validated_too(ws, server):
    # api_call(params=...) sends form data with blocks as a JSON string
    c = WebClient(token=ws.bot_token, base_url=server.api_url)
    with pytest.raises(SlackApiError) as ei:
        c.api_call(
            "chat.postMessage", params={"channel": "C0INC", "text": "x", "blocks": json.dumps([section("x" * 3001)])}
        )
    assert api_error(ei) == "invalid_blocks"
    r = c.api_call("chat.postMessage", params={"channel": "C0INC", "text": "x", "blocks": json.dumps([section("ok")])})
    assert ws.message("C0INC", r["ts"])["blocks"][0]["text"]["text"] == "ok"
    assert ws.calls("chat.postMessage")[-1].content_type == "application/x-www-form-urlencoded"


def test_link_names_and_parse_are_recorded(ws, client):
    r = client.chat_postMessage(channel="C0INC", text="a", link_names=True, parse="full")
    call = ws.calls("chat.postMessage")[-1]
    assert call.params["link_names"] in (True, 1, "1") and call.params["parse"] == "full"
    assert ws.message("C0INC", r["ts"])["extra"]["parse"] == "full"


def test_ephemeral_delete_permalink_info_users_groups(ws, client):
    e = client.chat_postEphemeral(channel="C0INC", user="U0ALICE", text="only you")
    assert e["message_ts"]
    assert [x["text"] for x in ws.ephemeral_for("U0ALICE")] == ["only you"]
    assert ws.ephemeral_for("U0BOB") == []
    with pytest.raises(SlackApiError) as ei:
        client.chat_postEphemeral(channel="C0INC", user="U0NOPE", text="x")
    assert api_error(ei) == "user_not_found"

    ts = client.chat_postMessage(channel="C0INC", text="tmp")["ts"]
    link = client.chat_getPermalink(channel="C0INC", message_ts=ts)["permalink"]
    assert ts.replace(".", "") in link
    client.chat_delete(channel="C0INC", ts=ts)
    assert ws.message("C0INC", ts) is None
    with pytest.raises(SlackApiError) as ei:
        client.chat_delete(channel="C0INC", ts=ts)
    assert api_error(ei) == "message_not_found"

    assert client.conversations_info(channel="C0INC")["channel"]["name"] == "gpu-incidents"
    names = [c["name"] for c in client.conversations_list()["channels"]]
    assert names == ["gpu-incidents"]
    assert client.users_info(user="U0ALICE")["user"]["name"] == "alice"
    with pytest.raises(SlackApiError) as ei:
        client.users_info(user="U0NOPE")
    assert api_error(ei) == "user_not_found"
    gid = ws.add_usergroup("oncall", ["U0ALICE"])
    assert client.usergroups_users_list(usergroup=gid)["users"] == ["U0ALICE"]


def test_cannot_update_human_message(ws, client):
    m = ws.post_message("C0INC", text="human", user="U0ALICE")
    with pytest.raises(SlackApiError) as ei:
        client.chat_update(channel="C0INC", ts=m["ts"], text="x")
    assert api_error(ei) == "cant_update_message"


# ---------------------------------------------------------------------- faults


def test_fail_next_429_with_retry_after(ws, client):
    ws.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as ei:
        client.chat_postMessage(channel="C0INC", text="x")
    resp = ei.value.response
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp["error"] == "ratelimited"
    # only once, and only for that method
    client.chat_postMessage(channel="C0INC", text="x")
    assert [c.status for c in ws.calls("chat.postMessage")] == [429, 200]


def test_fail_next_500_and_times(ws, client):
    ws.fail_next(None, status=500, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as ei:
            client.auth_test()
        assert ei.value.response.status_code == 500
    assert client.auth_test()["ok"]


def test_fail_for_window(ws, client):
    now = [100.0]
    ws.clock = lambda: now[0]  # deterministic clock instead of sleeping
    ws.fail_for(30, 503, method="chat.update")
    ts = client.chat_postMessage(channel="C0INC", text="x")["ts"]
    with pytest.raises(SlackApiError) as ei:
        client.chat_update(channel="C0INC", ts=ts, text="y")
    assert ei.value.response.status_code == 503
    now[0] += 31
    client.chat_update(channel="C0INC", ts=ts, text="y")
    assert ws.edit_count("C0INC", ts) == 1


def test_rate_limit_retry_handler_recovers(ws, client):
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    ws.fail_next("chat.postMessage", status=429, retry_after=0)
    r = client.chat_postMessage(channel="C0INC", text="x")
    assert r["ok"] and [c.status for c in ws.calls("chat.postMessage")] == [429, 200]


def test_natural_rate_limits(ws, client):
    now = [0.0]
    ws.clock = lambda: now[0]
    ws.create_channel("other", channel_id="C0OTHER")
    ws.enable_rate_limits()  # chat.postMessage: burst 3, then 1/s per channel
    for _ in range(3):
        client.chat_postMessage(channel="C0INC", text="x")
    with pytest.raises(SlackApiError) as ei:
        client.chat_postMessage(channel="C0INC", text="x")
    assert ei.value.response.status_code == 429 and ei.value.response.headers["Retry-After"] == "1"
    client.chat_postMessage(channel="C0OTHER", text="x")  # per channel
    now[0] += 1.0
    client.chat_postMessage(channel="C0INC", text="x")
    ws.enable_rate_limits({})
    for _ in range(5):
        client.chat_postMessage(channel="C0INC", text="x")


# ---------------------------------------------------------------------- response_url


def test_response_url_ephemeral_in_channel_replace_delete_and_limits(ws, server):
    tok = ws.new_response_url(channel="C0INC", user="U0ALICE")
    hook = WebhookClient(server.response_url(tok))
    assert hook.send(text="just you").status_code == 200
    assert [e["text"] for e in ws.ephemeral_for("U0ALICE")] == ["just you"]
    assert ws.ephemeral_for("U0ALICE")[0]["source"] == "response_url"
    assert hook.send(text="everyone", response_type="in_channel").status_code == 200
    assert [m["text"] for m in ws.messages("C0INC")] == ["everyone"]

    ts = ws.post_message("C0INC", text="vote", blocks=[button_block()])["ts"]
    tok2 = ws.new_response_url(channel="C0INC", user="U0ALICE", message_ts=ts)
    hook2 = WebhookClient(server.response_url(tok2))
    assert hook2.send(text="voted", replace_original=True).status_code == 200
    assert ws.message("C0INC", ts)["text"] == "voted" and ws.edit_count("C0INC", ts) == 1
    assert hook2.send_dict({"delete_original": True}).status_code == 200
    assert ws.message("C0INC", ts) is None

    # 5 uses max
    for _ in range(3):
        assert hook.send(text="more").status_code == 200
    r = hook.send(text="sixth")
    assert r.status_code == 404 and r.body == "used_url"
    assert ws.call_count("response_url") == 8


def test_response_url_expires(ws, server):
    now = [0.0]
    ws.clock = lambda: now[0]
    tok = ws.new_response_url(channel="C0INC", user="U0ALICE")
    now[0] += 30 * 60 + 1
    r = WebhookClient(server.response_url(tok)).send(text="late")
    assert r.status_code == 404 and r.body == "expired_url"


def test_response_url_validates_blocks(ws, server):
    tok = ws.new_response_url(channel="C0INC", user="U0ALICE")
    r = WebhookClient(server.response_url(tok)).send(text="x", blocks=[section(f"{i}") for i in range(51)])
    assert r.status_code == 400 and r.body == "invalid_blocks"


# ---------------------------------------------------------------------- views


def modal(title: str = "Vote", n_blocks: int = 1) -> dict:
    return {
        "type": "modal",
        "callback_id": "vote_modal",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Submit"},
        "blocks": [
            {
                "type": "input",
                "block_id": f"in{i}",
                "label": {"type": "plain_text", "text": "Why"},
                "element": {"type": "plain_text_input", "action_id": "why"},
            }
            for i in range(n_blocks)
        ],
    }


def test_views_open_update_push_and_triggers(ws, client):
    trig = ws.issue_trigger("U0ALICE")
    v = client.views_open(trigger_id=trig, view=modal())["view"]
    assert ws.views_for("U0ALICE")[0]["id"] == v["id"]
    with pytest.raises(SlackApiError) as ei:  # one use only
        client.views_open(trigger_id=trig, view=modal())
    assert api_error(ei) == "expired_trigger_id"
    with pytest.raises(SlackApiError) as ei:
        client.views_open(trigger_id="123.bogus", view=modal())
    assert api_error(ei) == "invalid_trigger_id"
    u = client.views_update(view_id=v["id"], hash=v["hash"], view=modal(title="Vote 2"))["view"]
    assert ws.views_for("U0ALICE")[0]["title"]["text"] == "Vote 2"
    with pytest.raises(SlackApiError) as ei:
        client.views_update(view_id=v["id"], hash=v["hash"], view=modal())  # stale hash
    assert api_error(ei) == "hash_conflict"
    client.views_push(trigger_id=ws.issue_trigger("U0ALICE"), view=modal(title="Details"))
    assert [x["title"]["text"] for x in ws.views_for("U0ALICE")] == ["Vote 2", "Details"]
    assert u["id"] == v["id"]


def test_views_validation(ws, client):
    with pytest.raises(SlackApiError) as ei:
        client.views_open(trigger_id=ws.issue_trigger("U0ALICE"), view=modal(n_blocks=101))
    assert api_error(ei) == "invalid_arguments"
    with pytest.raises(SlackApiError) as ei:
        client.views_open(trigger_id=ws.issue_trigger("U0ALICE"), view=modal(title="t" * 25))
    assert api_error(ei) == "invalid_arguments"
    client.views_open(trigger_id=ws.issue_trigger("U0ALICE"), view=modal(n_blocks=100))


def test_trigger_expires(ws, client):
    now = [0.0]
    ws.clock = lambda: now[0]
    trig = ws.issue_trigger("U0ALICE")
    now[0] += 3.5
    with pytest.raises(SlackApiError) as ei:
        client.views_open(trigger_id=trig, view=modal())
    assert api_error(ei) == "expired_trigger_id"


# ---------------------------------------------------------------------- state JSON, waiting, mounting


def test_state_endpoints(ws, client, server):
    ts = client.chat_postMessage(channel="C0INC", text="a", blocks=[section("a")])["ts"]
    client.chat_update(channel="C0INC", ts=ts, text="b")
    client.chat_postMessage(channel="C0INC", thread_ts=ts, text="r")
    client.chat_postEphemeral(channel="C0INC", user="U0BOB", text="psst")
    client.views_open(trigger_id=ws.issue_trigger("U0BOB"), view=modal())
    snap = httpx.get(f"{server.url}/state/channels/gpu-incidents").json()
    (m,) = snap["messages"]
    assert m["text"] == "b" and m["edit_count"] == 1 and m["edited"] and [r["text"] for r in m["replies"]] == ["r"]
    assert httpx.get(f"{server.url}/state/ephemeral/U0BOB").json()["messages"][0]["text"] == "psst"
    assert httpx.get(f"{server.url}/state/views/U0BOB").json()["views"][0]["callback_id"] == "vote_modal"
    calls = httpx.get(f"{server.url}/state/calls", params={"method": "chat.update"}).json()["calls"]
    assert len(calls) == 1 and calls[0]["params"]["ts"] == ts
    assert httpx.get(f"{server.url}/state/channels/nope").status_code == 404
    v = snap["version"]
    assert httpx.get(f"{server.url}/state/wait", params={"after": v + 1000, "timeout": 0}).json()["version"] >= v


def test_wait_for_sees_change_from_another_thread(ws, client):
    import threading

    t = threading.Thread(target=lambda: client.chat_postMessage(channel="C0INC", text="later"))
    t.start()
    msgs = ws.wait_for(lambda: ws.messages("C0INC"), timeout=5)
    t.join()
    assert msgs[0]["text"] == "later"
    with pytest.raises(TimeoutError):
        ws.wait_for(lambda: False, timeout=0.05)


def test_mountable_in_fastapi(ws):
    parent = FastAPI()
    parent.mount("/localslack", create_app(ws))
    s = run_in_thread(ws, app=parent)
    try:
        c = WebClient(token=ws.bot_token, base_url=f"{s.url}/localslack/api/")
        ts = c.chat_postMessage(channel="C0INC", text="mounted")["ts"]
        assert httpx.get(f"{s.url}/localslack/state/channels/C0INC").json()["messages"][0]["ts"] == ts
    finally:
        s.stop()


# ---------------------------------------------------------------------- signing / user side


def test_signature_verifies_and_stale_does_not(ws, server):
    sim = SlackSimulator(ws, bot_url="http://unused", signing_secret=SECRET, localslack_url=server.url)
    verifier = SignatureVerifier(SECRET)
    body = b"token=x&command=%2Fincident&text=hello"
    assert verifier.is_valid_request(body, sim.sign(body))
    assert not verifier.is_valid_request(body, sim.sign(body, stale=True))
    assert not verifier.is_valid_request(body, sim.sign(body, bad_signature=True))
    assert not verifier.is_valid_request(body + b"x", sim.sign(body))
    sim.close()


@pytest.fixture
def bolt_bot(ws, server):
    """A tiny real Bolt app, served over HTTP, talking to the local Slack."""
    from slack_bolt import App
    from slack_bolt.adapter.fastapi import SlackRequestHandler

    bolt = App(
        client=WebClient(token=ws.bot_token, base_url=server.api_url),
        signing_secret=SECRET,
        process_before_response=True,
    )

    @bolt.command("/incident")
    def incident(ack, respond, command, client):
        ack(f"ack: {command['text']}")
        respond(text="via response_url")
        client.chat_postEphemeral(channel=command["channel_id"], user=command["user_id"], text="via postEphemeral")
        client.chat_postMessage(channel=command["channel_id"], text="vote?", blocks=[button_block()])

    @bolt.command("/modal")
    def open_modal(ack, body, client):
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=modal())

    @bolt.action("vote")
    def vote(ack, body, respond):
        ack()
        respond(text=f"{body['user']['id']} voted {body['actions'][0]['value']}", replace_original=True)

    @bolt.event("app_mention")
    def mention(event, say):
        say(text=f"status for {event['user']}", thread_ts=event["ts"])

    @bolt.view("vote_modal")
    def submitted(ack, view):
        why = view["state"]["values"]["in0"]["why"]["value"]
        if not why.strip():
            ack(response_action="errors", errors={"in0": "say why"})
        else:
            ack()

    web = FastAPI()
    handler = SlackRequestHandler(bolt)

    @web.post("/slack/events")
    async def events(req: Request):
        return await handler.handle(req)

    s = run_in_thread(ws, app=web)
    sim = SlackSimulator(ws, bot_url=f"{s.url}/slack/events", signing_secret=SECRET, localslack_url=server.url)
    yield sim
    sim.close()
    s.stop()


def test_slash_command_replies_reach_the_user(ws, bolt_bot):
    r = bolt_bot.slash_command("/incident", "gpu 7 down", user="U0ALICE", channel="gpu-incidents")
    assert r.status == 200 and r.text == "ack: gpu 7 down"
    seen = bolt_bot.wait_for_reply("U0ALICE", lambda e: e["source"] == "chat.postEphemeral")
    assert seen["text"] == "via postEphemeral"
    assert {(e["source"], e["text"]) for e in bolt_bot.replies_for("U0ALICE")} == {
        ("ack", "ack: gpu 7 down"),
        ("response_url", "via response_url"),
        ("chat.postEphemeral", "via postEphemeral"),
    }
    assert bolt_bot.replies_for("U0BOB") == []
    assert r.elapsed < 3


def test_button_click_and_modal_submit(ws, bolt_bot):
    bolt_bot.slash_command("/incident", "x", user="U0ALICE", channel="C0INC")
    (msg,) = ws.wait_for(lambda: ws.messages("C0INC"))
    r = bolt_bot.click_button(user="U0BOB", channel="C0INC", message_ts=msg["ts"], action_id="vote")
    assert r.status == 200 and r.payload["actions"][0]["block_id"] == "b1"
    assert ws.wait_for(lambda: ws.message("C0INC", msg["ts"])["text"] == "U0BOB voted 1")
    with pytest.raises(LookupError):
        bolt_bot.click_button(user="U0BOB", channel="C0INC", message_ts=msg["ts"], action_id="nope")

    bolt_bot.slash_command("/modal", "", user="U0BOB", channel="C0INC")
    (view,) = ws.wait_for(lambda: ws.views_for("U0BOB"))
    r = bolt_bot.submit_view(user="U0BOB", values={"in0": {"why": "  "}})
    assert r.json == {"response_action": "errors", "errors": {"in0": "say why"}}
    assert ws.views_for("U0BOB")[0]["errors"] == {"in0": "say why"}
    r = bolt_bot.submit_view(user="U0BOB", view_id=view["id"], values={"in0": {"why": "flaky IB"}})
    assert r.status == 200 and ws.views_for("U0BOB") == []


def test_app_mention_event(ws, bolt_bot):
    r = bolt_bot.mention_bot("status?", user="U0ALICE", channel="C0INC")
    assert r.status == 200
    parent = ws.messages("C0INC")[0]
    (reply,) = ws.wait_for(lambda: ws.replies("C0INC", parent["ts"]))
    assert reply["text"] == "status for U0ALICE"


def test_bad_or_stale_signature_rejected_by_bolt(ws, bolt_bot):
    assert bolt_bot.slash_command("/incident", "x", user="U0ALICE", channel="C0INC", stale=True).status == 401
    assert bolt_bot.slash_command("/incident", "x", user="U0ALICE", channel="C0INC", bad_signature=True).status == 401
    assert ws.messages("C0INC") == [] and bolt_bot.replies_for("U0ALICE") == []
