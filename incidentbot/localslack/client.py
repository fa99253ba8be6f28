"""The *user side* of Slack: send the bot signed requests the way Slack does.

`SlackSimulator` posts slash commands, button clicks (block_actions) and modal submissions
(view_submission) to the bot's request URL (e.g. `http://127.0.0.1:PORT/slack/events`), signed
with the signing secret, with `response_url`s pointing at the local Slack's `/response/{token}`
and `trigger_id`s the local Slack accepts for `views.open`.

What Slack itself does with the bot's HTTP answer is applied to the `Workspace` as well:

- slash command ack with a body: plain text or JSON `{"text"/"blocks"}` is shown ephemerally to the
  user (`source="ack"`); JSON with `"response_type": "in_channel"` is posted to the channel.
- view_submission ack: empty → the submitted view closes; `response_action` `clear` closes the
  stack, `update` replaces the view, `push` pushes one, `errors` stores the errors on the view.
- block_actions ack body is ignored (as Slack does).

`replies_for(user)` lists what a user saw privately from any of: ack bodies, response_url posts
with an ephemeral response_type, chat.postEphemeral. In-channel replies are in
`workspace.messages(channel)`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from .state import Workspace

STALE_SECONDS = 10 * 60


@dataclass
class BotResponse:
    """The bot's HTTP answer to one simulated Slack request."""

    kind: str  # "slash_command" | "block_actions" | "view_submission" | "event" | "raw"
    status: int
    text: str
    headers: dict[str, str]
    user: str | None = None
    channel: str | None = None
    response_url: str | None = None
    trigger_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)  # form fields or interactivity payload sent
    elapsed: float = 0.0  # seconds until the bot answered (Slack allows 3)

    @property
    def json(self) -> Any:
        """Parsed body, or None when empty / not JSON."""
        if not self.text:
            return None
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return self.status == 200


class SlackSimulator:
    """Plays Slack + its users against a running bot.

    `workspace` is the shared local Slack state; `bot_url` the bot's request URL; `localslack_url`
    the base URL of the local Slack app (e.g. `RunningServer.url`, or `http://host/localslack`
    when mounted), used to build response_urls.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        bot_url: str,
        signing_secret: str,
        localslack_url: str,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        socket_mode: bool = False,
    ) -> None:
        self.ws = workspace
        self.bot_url = bot_url
        # Socket Mode: requests go as envelopes on the app's open WebSocket instead of signed
        # HTTP requests to `bot_url`, and the envelope's acknowledgement is the ack.
        self.socket_mode = socket_mode
        self.localslack_url = localslack_url.rstrip("/")
        self.verifier = SignatureVerifier(signing_secret)
        self.clock = clock
        self._http = http or httpx.Client(timeout=timeout)
        self._own_http = http is None
        self.acks: list[BotResponse] = []

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> SlackSimulator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ signing
    def sign(
        self, body: bytes, *, timestamp: int | None = None, stale: bool = False, bad_signature: bool = False
    ) -> dict[str, str]:
        """Headers Slack would send for `body`. `stale` dates the request 10 minutes back;
        `bad_signature` signs with the wrong secret."""
        ts = int(timestamp if timestamp is not None else self.clock())
        if stale:
            ts -= STALE_SECONDS
        sig = self.verifier.generate_signature(timestamp=str(ts), body=body) or ""
        if bad_signature:
            sig = SignatureVerifier("not-the-secret").generate_signature(timestamp=str(ts), body=body) or "v0=00"
        return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig}

    def post_signed(
        self,
        body: bytes,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        stale: bool = False,
        bad_signature: bool = False,
        extra_headers: dict[str, str] | None = None,
        kind: str = "raw",
    ) -> BotResponse:
        headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        headers.update(self.sign(body, stale=stale, bad_signature=bad_signature))
        headers.update(extra_headers or {})
        started = time.monotonic()
        r = self._http.post(self.bot_url, content=body, headers=headers)
        return BotResponse(
            kind=kind,
            status=r.status_code,
            text=r.text,
            headers=dict(r.headers),
            elapsed=time.monotonic() - started,
        )

    def _deliver(
        self,
        kind: str,
        *,
        form: dict | None = None,
        payload: dict | None = None,
        stale: bool = False,
        bad_signature: bool = False,
    ) -> BotResponse:
        """One request from Slack: `form` fields (a slash command) or a JSON `payload`
        (interactivity, events), over HTTP or Socket Mode."""
        if self.socket_mode:
            if stale or bad_signature:
                raise ValueError("Socket Mode requests are not signed: nothing to make stale or forge")
            envelope_type = {"slash_command": "slash_commands", "event": "events_api"}.get(kind, "interactive")
            started = time.monotonic()
            ack = self.ws.socket_mode.deliver(envelope_type, form if form is not None else payload or {})
            body = ack.get("payload")
            return BotResponse(
                kind=kind,
                status=200,
                text=json.dumps(body) if body else "",
                headers={},
                elapsed=time.monotonic() - started,
            )
        if form is not None:
            return self.post_signed(urlencode(form).encode(), stale=stale, bad_signature=bad_signature, kind=kind)
        if kind == "event":
            return self.post_signed(
                json.dumps(payload).encode(),
                content_type="application/json",
                stale=stale,
                bad_signature=bad_signature,
                kind=kind,
            )
        return self.post_signed(
            urlencode({"payload": json.dumps(payload)}).encode(), stale=stale, bad_signature=bad_signature, kind=kind
        )

    # ------------------------------------------------------------------ helpers
    def _user(self, user: str) -> dict:
        u = self.ws.user(user)
        if u is None:
            raise KeyError(f"unknown user {user}")
        return u

    def _channel(self, channel: str) -> dict:
        ch = self.ws.channel(channel)
        if ch is None:
            raise KeyError(f"unknown channel {channel}")
        return ch

    def response_url_for(self, token: str) -> str:
        return f"{self.localslack_url}/response/{token}"

    def _finish(self, resp: BotResponse) -> BotResponse:
        self.acks.append(resp)
        return resp

    # ------------------------------------------------------------------ slash commands
    def slash_command(
        self,
        command: str,
        text: str = "",
        *,
        user: str,
        channel: str,
        stale: bool = False,
        bad_signature: bool = False,
    ) -> BotResponse:
        """Send `/command text` typed by `user` in `channel` (id or name)."""
        u, ch = self._user(user), self._channel(channel)
        token = self.ws.new_response_url(channel=ch["id"], user=u["id"])
        trigger_id = self.ws.issue_trigger(u["id"])
        form = {
            "token": "local-verification-token",
            "team_id": self.ws.team_id,
            "team_domain": self.ws.team_name,
            "channel_id": ch["id"],
            "channel_name": ch.get("name") or "directmessage",
            "user_id": u["id"],
            "user_name": u["name"],
            "command": command if command.startswith("/") else f"/{command}",
            "text": text,
            "api_app_id": "A0LOCAL01",
            "is_enterprise_install": "false",
            "response_url": self.response_url_for(token),
            "trigger_id": trigger_id,
        }
        resp = self._deliver("slash_command", form=form, stale=stale, bad_signature=bad_signature)
        resp.user, resp.channel, resp.response_url, resp.trigger_id, resp.payload = (
            u["id"],
            ch["id"],
            form["response_url"],
            trigger_id,
            form,
        )
        if resp.status == 200 and resp.text.strip():
            body = resp.json
            if isinstance(body, dict):
                if body.get("text") or body.get("blocks"):
                    if body.get("response_type") == "in_channel":
                        self.ws.post_message(ch["id"], text=body.get("text") or "", blocks=body.get("blocks"))
                    else:
                        self.ws.post_ephemeral(
                            ch["id"], u["id"], text=body.get("text") or "", blocks=body.get("blocks"), source="ack"
                        )
            else:
                self.ws.post_ephemeral(ch["id"], u["id"], text=resp.text, source="ack")
        return self._finish(resp)

    # ------------------------------------------------------------------ block_actions
    @staticmethod
    def _find_action(blocks: list[dict], action_id: str, block_id: str | None) -> tuple[dict, dict] | None:
        for b in blocks or []:
            if block_id and b.get("block_id") != block_id:
                continue
            elements = list(b.get("elements") or []) if b.get("type") == "actions" else []
            if isinstance(b.get("accessory"), dict):
                elements.append(b["accessory"])
            for el in elements:
                if isinstance(el, dict) and el.get("action_id") == action_id:
                    return b, el
        return None

    def click_button(
        self,
        *,
        user: str,
        action_id: str,
        channel: str | None = None,
        message_ts: str | None = None,
        ephemeral_ts: str | None = None,
        view_id: str | None = None,
        block_id: str | None = None,
        value: str | None = None,
        strict: bool = True,
        stale: bool = False,
        bad_signature: bool = False,
    ) -> BotResponse:
        """Click the button `action_id` on a channel message (`channel`+`message_ts`), on an
        ephemeral message the user sees (`ephemeral_ts`), or in an open modal (`view_id`).

        The button is looked up in the current blocks (its block_id, text and value are sent as
        Slack would); with `strict=True` a button that is not there raises LookupError.
        """
        u = self._user(user)
        blocks: list[dict] = []
        container: dict[str, Any]
        message: dict | None = None
        view: dict | None = None
        ch: dict | None = None
        if view_id:
            view = self.ws.find_view(view_id=view_id)
            if view is None:
                raise LookupError(f"no open view {view_id}")
            blocks = view.get("blocks") or []
            container = {"type": "view", "view_id": view_id}
        elif ephemeral_ts:
            assert channel, "channel is required"
            ch = self._channel(channel)
            e = next((e for e in self.ws.ephemeral_for(u["id"]) if e["ts"] == ephemeral_ts), None)
            if e is None:
                raise LookupError(f"no ephemeral message {ephemeral_ts} for {user}")
            blocks = e["blocks"]
            container = {"type": "message", "message_ts": ephemeral_ts, "channel_id": ch["id"], "is_ephemeral": True}
        else:
            assert channel and message_ts, "channel and message_ts are required"
            ch = self._channel(channel)
            message = self.ws.message(ch["id"], message_ts)
            if message is None:
                raise LookupError(f"no message {message_ts} in {channel}")
            blocks = message["blocks"]
            container = {"type": "message", "message_ts": message_ts, "channel_id": ch["id"], "is_ephemeral": False}
            if message.get("thread_ts") and message["thread_ts"] != message_ts:
                container["thread_ts"] = message["thread_ts"]

        found = self._find_action(blocks, action_id, block_id)
        if found is None and strict:
            raise LookupError(f"no element with action_id={action_id!r} (block_id={block_id!r})")
        block, element = found if found else ({"block_id": block_id or ""}, {"type": "button"})
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block.get("block_id") or block_id or "",
            "type": element.get("type", "button"),
            "action_ts": f"{self.clock():.6f}",
        }
        if element.get("text"):
            action["text"] = element["text"]
        val = value if value is not None else element.get("value")
        if val is not None:
            action["value"] = val

        trigger_id = self.ws.issue_trigger(u["id"])
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": u["id"], "username": u["name"], "name": u["name"], "team_id": self.ws.team_id},
            "api_app_id": "A0LOCAL01",
            "token": "local-verification-token",
            "container": container,
            "trigger_id": trigger_id,
            "team": {"id": self.ws.team_id, "domain": self.ws.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": {}},
            "actions": [action],
        }
        response_url = None
        if ch is not None:
            payload["channel"] = {"id": ch["id"], "name": ch.get("name") or "directmessage"}
            token = self.ws.new_response_url(
                channel=ch["id"],
                user=u["id"],
                message_ts=ephemeral_ts or message_ts,
                is_ephemeral=bool(ephemeral_ts),
                thread_ts=(message or {}).get("thread_ts"),
            )
            response_url = self.response_url_for(token)
            payload["response_url"] = response_url
        if message is not None:
            payload["message"] = {
                k: v for k, v in message.items() if k not in ("channel", "edit_count", "history", "extra")
            }
        if view is not None:
            payload["view"] = {k: v for k, v in view.items() if k != "user"}
        resp = self._deliver("block_actions", payload=payload, stale=stale, bad_signature=bad_signature)
        resp.user, resp.channel, resp.response_url, resp.trigger_id, resp.payload = (
            u["id"],
            ch["id"] if ch else None,
            response_url,
            trigger_id,
            payload,
        )
        return self._finish(resp)

    # ------------------------------------------------------------------ view_submission
    def submit_view(
        self,
        *,
        user: str,
        values: dict[str, dict[str, Any]],
        view_id: str | None = None,
        stale: bool = False,
        bad_signature: bool = False,
    ) -> BotResponse:
        """Submit the user's modal (`view_id`, default: top of the user's stack).

        `values` is `{block_id: {action_id: state}}`; a plain string state is shorthand for
        `{"type": "plain_text_input", "value": s}`.
        """
        u = self._user(user)
        stack = self.ws.views_for(u["id"])
        view = next((v for v in stack if v["id"] == view_id), None) if view_id else (stack[-1] if stack else None)
        if view is None:
            raise LookupError(f"no open view for {user}" + (f" with id {view_id}" if view_id else ""))
        state_values = {
            bid: {
                aid: ({"type": "plain_text_input", "value": v} if isinstance(v, str) or v is None else v)
                for aid, v in actions.items()
            }
            for bid, actions in values.items()
        }
        self.ws.set_view_state(view["id"], state_values)
        view = dict(view, state={"values": state_values})
        trigger_id = self.ws.issue_trigger(u["id"])
        payload = {
            "type": "view_submission",
            "team": {"id": self.ws.team_id, "domain": self.ws.team_name},
            "user": {"id": u["id"], "username": u["name"], "name": u["name"], "team_id": self.ws.team_id},
            "api_app_id": "A0LOCAL01",
            "token": "local-verification-token",
            "trigger_id": trigger_id,
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        resp = self._deliver("view_submission", payload=payload, stale=stale, bad_signature=bad_signature)
        resp.user, resp.trigger_id, resp.payload = u["id"], trigger_id, payload
        if resp.status == 200:
            self._apply_view_ack(u["id"], view["id"], resp.json)
        return self._finish(resp)

    def _apply_view_ack(self, user: str, view_id: str, body: Any) -> None:
        action = body.get("response_action") if isinstance(body, dict) else None
        if action is None:
            self.ws.close_view(user)
        elif action == "clear":
            self.ws.close_view(user, all_views=True)
        elif action == "update" and isinstance(body.get("view"), dict):
            self.ws.update_view(body["view"], view_id=view_id)
        elif action == "push" and isinstance(body.get("view"), dict):
            self.ws.open_view(user, body["view"], push=True)
        elif action == "errors":
            self.ws.set_view_errors(view_id, body.get("errors") or {})

    # ------------------------------------------------------------------ Events API
    def send_event(
        self,
        event: dict[str, Any],
        *,
        stale: bool = False,
        bad_signature: bool = False,
    ) -> BotResponse:
        """Deliver an Events API `event_callback` (JSON) wrapping `event`, e.g.
        `{"type": "app_mention", "user": "U…", "channel": "C…", "text": "<@BOT> hi", "ts": "…"}`."""
        envelope = {
            "token": "local-verification-token",
            "team_id": self.ws.team_id,
            "api_app_id": "A0LOCAL01",
            "event": {"event_ts": event.get("ts") or f"{self.clock():.6f}", **event},
            "type": "event_callback",
            "event_id": f"Ev{int(self.clock() * 1000):X}{len(self.acks):04d}",
            "event_time": int(self.clock()),
            "authorizations": [
                {
                    "team_id": self.ws.team_id,
                    "user_id": self.ws.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        resp = self._deliver("event", payload=envelope, stale=stale, bad_signature=bad_signature)
        resp.user, resp.channel, resp.payload = event.get("user"), event.get("channel"), envelope
        return self._finish(resp)

    def mention_bot(self, text: str, *, user: str, channel: str, thread_ts: str | None = None) -> BotResponse:
        """Post `<@bot> text` as `user` in `channel` (state) and send the matching app_mention event."""
        ch = self._channel(channel)
        full = f"<@{self.ws.bot_user_id}> {text}"
        msg = self.ws.post_message(ch["id"], text=full, user=user, thread_ts=thread_ts)
        event = {"type": "app_mention", "user": user, "channel": ch["id"], "text": full, "ts": msg["ts"]}
        if msg.get("thread_ts"):
            event["thread_ts"] = msg["thread_ts"]
        return self.send_event(event)

    # ------------------------------------------------------------------ the user's view of things
    def post_as_user(self, channel: str, text: str, *, user: str, thread_ts: str | None = None) -> dict:
        """A human message in a channel (state only; no Events API request is sent to the bot)."""
        return self.ws.post_message(channel, text=text, user=user, thread_ts=thread_ts)

    def replies_for(self, user: str) -> list[dict]:
        """Everything shown privately to `user`, oldest first: dicts with `text`, `blocks`,
        `channel`, `ts` and `source` ("ack", "response_url" or "chat.postEphemeral")."""
        return self.ws.ephemeral_for(user)

    def wait_for_reply(
        self,
        user: str,
        predicate: Callable[[dict], bool] | None = None,
        *,
        after: int = 0,
        timeout: float = 5.0,
    ) -> dict:
        """Wait until `user` has a private reply (index ≥ `after`) matching `predicate`; return it."""

        def check() -> dict | None:
            for e in self.ws.ephemeral_for(user)[after:]:
                if predicate is None or predicate(e):
                    return e
            return None

        return self.ws.wait_for(check, timeout=timeout)
