"""The Bolt app: translate Slack payloads, call the command router and services, reply.

HTTP mode is served by FastAPI at ``/slack/events`` through two conversion functions (Starlette
request → BoltRequest, BoltResponse → Starlette response); Socket Mode is used instead when
``SLACK_APP_TOKEN`` is set. Listeners acknowledge within Slack's 3 seconds: a command's reply rides
on the ack when it is ready within 75 ms, otherwise the ack says "Working on it…" and the reply
replaces it through ``response_url``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from starlette.requests import Request
from starlette.responses import Response

from incidentbot.blocks import esc
from incidentbot.ids import IdError, parse_id
from incidentbot.services import messages
from incidentbot.services.deliveries import DeliveryLog, delivery_key
from incidentbot.services.outbox import queue
from incidentbot.services.resolutions import ResolutionError
from incidentbot.services.votes import PollClosed, PollError
from incidentbot.slack.commands import CommandRouter, Invocation, Reply, share_button
from incidentbot.slack.modals import RESOLVE_CALLBACK, read_resolution

__all__ = ["create_bolt_app", "to_bolt_request", "to_starlette_response", "Permissions"]

log = logging.getLogger(__name__)

# A reply ready within this budget rides on the ack; a slower one is acked at once ("Working on
# it…") and replaces that note through response_url, so the ack itself is always fast.
ACK_BUDGET = 0.075


class Permissions:
    """Who may merge, split, resolve, mute and close others' polls: INCIDENTBOT_ADMINS user ids
    and members of INCIDENTBOT_ADMIN_GROUP. With neither set, everyone may."""

    def __init__(self, *, admins: frozenset[str], group: str | None, client: WebClient, ttl: float = 300.0):
        self.admins, self.group, self.client, self.ttl = admins, group, client, ttl
        self._members: frozenset[str] = frozenset()
        self._fetched = 0.0

    def __call__(self, user: str) -> bool:
        if not self.admins and not self.group:
            return True
        if user in self.admins:
            return True
        if self.group:
            if time.monotonic() - self._fetched > self.ttl:
                try:
                    self._members = frozenset(self.client.usergroups_users_list(usergroup=self.group).get("users", []))
                    self._fetched = time.monotonic()
                except Exception:  # noqa: BLE001 - a Slack hiccup must not grant rights
                    log.warning("could not read admin group %s", self.group, exc_info=True)
            return user in self._members
        return False


def _reply_body(reply: Reply, *, command_text: str | None, in_channel: bool = False) -> dict:
    blocks = list(reply.blocks)
    if reply.shareable and command_text and not in_channel:
        blocks.append(share_button(command_text))
    return {"response_type": "in_channel" if in_channel else "ephemeral", "text": reply.text, "blocks": blocks}


def create_bolt_app(
    rt, *, client: WebClient, signing_secret: str, is_admin=None, deliveries: DeliveryLog | None = None
) -> App:
    settings = rt.settings
    is_admin = is_admin or Permissions(admins=settings.admin_ids(), group=settings.admin_group, client=client)
    router = CommandRouter(rt, is_admin=is_admin)
    app = App(
        client=client,
        signing_secret=signing_secret,
        token_verification_enabled=False,
        request_verification_enabled=True,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="slash")
    deliveries = deliveries or DeliveryLog(rt.db, clock=rt.clock)

    @app.use
    def once_per_delivery(req, body, next):
        # After Bolt's own checks (signature, URL verification), before any listener: a delivery
        # Slack sends again (X-Slack-Retry-Num, a resent command or click) is acked and dropped.
        key = delivery_key(body) if isinstance(body, dict) else None
        if key is None or deliveries.first_time(key, by=rt.worker_id):
            return next()
        retry = (req.headers.get("x-slack-retry-num") or [""])[0]
        reason = (req.headers.get("x-slack-retry-reason") or [""])[0]
        kind = (
            "event"
            if key.startswith("event:")
            else str(body.get("type") or ("command" if body.get("command") else "other"))[:40]
        )
        rt.metrics.slack_duplicates.labels(kind).inc()
        log.info(
            "Slack delivered %s again (retry %s %s): already handled, acked without acting",
            key[:80],
            retry or "-",
            reason[:40],
        )
        return BoltResponse(status=200, body="")

    app.router = router  # type: ignore[attr-defined]  # tests reach the router through the app

    def run(inv: Invocation) -> Reply:
        try:
            return router.handle(inv)
        except Exception:  # noqa: BLE001 - the user gets a message, the log gets the trace
            log.exception("command failed: %r", inv.text[:200])
            return Reply(
                "Something went wrong on our side; the error is in the bot's log.",
                [
                    {
                        "type": "section",
                        "text": {
                            "type": "mrkdwn",
                            "text": ":boom: Something went wrong on our side; the error is in the bot's log.",
                        },
                    }
                ],
            )

    @app.command(settings.slash_command)
    def on_command(ack, command, respond, client):
        inv = Invocation(
            user=command["user_id"],
            channel=command.get("channel_id"),
            text=command.get("text") or "",
            trigger_id=command.get("trigger_id"),
        )
        future = pool.submit(run, inv)
        try:
            reply = future.result(timeout=ACK_BUDGET)
        except FutureTimeout:
            ack(text="Working on it…")
            reply = future.result()
            if reply.view:
                respond(
                    text="That took too long to open a form; please run the command again.", response_type="ephemeral"
                )
            else:
                respond(**_reply_body(reply, command_text=inv.text), replace_original=True)
            return
        if reply.view and inv.trigger_id:
            client.views_open(trigger_id=inv.trigger_id, view=reply.view)
            ack()
            return
        ack(**_reply_body(reply, command_text=inv.text))

    def _user(body) -> str:
        return (body.get("user") or {}).get("id", "")

    def _channel(body) -> str | None:
        return (body.get("channel") or {}).get("id") or settings.alert_channel

    def _say(respond, text: str) -> None:
        respond(text=text, response_type="ephemeral", replace_original=False)

    @app.action("ib:show")
    def on_show(ack, body, action, respond):
        ack()
        reply = run(Invocation(user=_user(body), channel=_channel(body), text=f"show {action.get('value', '')}"))
        respond(**_reply_body(reply, command_text=f"show {action.get('value', '')}"), replace_original=False)

    @app.action("ib:share")
    def on_share(ack, body, action, respond):
        ack()
        text = action.get("value", "")
        reply = run(Invocation(user=_user(body), channel=_channel(body), text=text))
        body_ = _reply_body(reply, command_text=None, in_channel=True)
        body_["blocks"].append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"shared by <@{esc(_user(body))}>"}]}
        )
        respond(**body_, replace_original=False)

    @app.action("ib:mute")
    def on_mute(ack, body, action, respond):
        ack()
        reply = run(
            Invocation(user=_user(body), channel=_channel(body), text=f"mute {action.get('value', '')} for 24h")
        )
        _say(respond, reply.text)
        try:
            _, sid = parse_id(action.get("value", ""), expect="S")
        except IdError:
            return
        with rt.db.write() as session:
            queue(session, messages.alert_edit(signature_id=sid))

    @app.action("ib:vote_start")
    def on_vote_start(ack, body, action, respond):
        ack()
        value = action.get("value", "")
        with rt.db.read() as session:
            hyps = rt.votes.hypotheses_for(session, value)
        reply = run(
            Invocation(user=_user(body), channel=_channel(body), text="vote " + " ".join(f"H-{h}" for h in hyps))
        )
        _say(respond, reply.text)

    @app.action("ib:vote")
    def on_vote(ack, body, action, respond):
        # The ballot is stored before the ack (a few milliseconds), so a click Slack saw
        # acknowledged is a click counted.
        try:
            pid, oid = (int(x) for x in action.get("value", "").removeprefix("P-").split(":"))
            label = rt.votes.cast(poll_id=pid, user=_user(body), option_id=oid)
        except PollClosed:
            ack()
            _say(respond, "This poll is closed; your click was not counted.")
            return
        except (PollError, ValueError) as exc:
            ack()
            _say(respond, f":warning: {esc(str(exc))}")
            return
        ack()
        _say(respond, f"Your vote: {esc(label[:200])}. Click another option to change it.")

    @app.action("ib:vote_close")
    def on_vote_close(ack, body, action, respond):
        ack()
        reply = run(Invocation(user=_user(body), channel=_channel(body), text=f"vote close {action.get('value', '')}"))
        _say(respond, reply.text)

    @app.action("ib:resolve")
    def on_resolve_button(ack, body, action, client, respond):
        ack()
        reply = run(Invocation(user=_user(body), channel=_channel(body), text=f"resolve {action.get('value', '')}"))
        if reply.view:
            client.views_open(trigger_id=body["trigger_id"], view=reply.view)
        else:
            _say(respond, reply.text)

    @app.action("ib:link")
    def on_link(ack):
        ack()  # URL buttons open in the browser; Slack still sends the click

    @app.view(RESOLVE_CALLBACK)
    def on_resolve_submit(ack, body, view):
        user = _user(body)
        try:
            hid, values, errors = read_resolution(view)
        except (ValueError, IndexError):
            ack(response_action="errors", errors={"cause": "This form is damaged; run the resolve command again."})
            return
        if errors:
            ack(response_action="errors", errors=errors)
            return
        if not is_admin(user):
            ack(response_action="errors", errors={"cause": "Only incident admins can resolve hypotheses."})
            return
        # Stored before the ack, so the modal closes only once the resolution is saved (a quick write,
        # well inside Slack's 3 s): a hypothesis gone meanwhile is said in the form, not lost.
        try:
            rt.resolutions.resolve(
                hid,
                cause=values["cause"],
                fix=values.get("fix", ""),
                link=values.get("link", ""),
                fixed_in=values.get("fixed_in", ""),
                actor=user,
            )
        except (ResolutionError, LookupError) as exc:
            ack(response_action="errors", errors={"cause": str(exc)[:150]})
            return
        ack()

    @app.error
    def on_error(error, body):
        log.error("slack handler error: %s", error, exc_info=error)

    return app


# -- the two conversion functions of the HTTP adapter ---------------------------------------


def to_bolt_request(body: bytes, request: Request) -> BoltRequest:
    grouped: dict[str, list[str]] = {}
    for k, v in request.headers.items():
        grouped.setdefault(k.lower(), []).append(v)
    headers: dict[str, str | Sequence[str]] = dict(grouped)
    return BoltRequest(body=body.decode("utf-8", errors="replace"), query=request.url.query, headers=headers)


def to_starlette_response(resp: BoltResponse) -> Response:
    headers = {k: v if isinstance(v, str) else v[0] for k, v in resp.headers.items() if k.lower() != "content-length"}
    return Response(content=resp.body, status_code=resp.status, headers=headers)
