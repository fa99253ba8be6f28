"""The local browser console: the channel as Slack would show it, and hypothesis pages.

Mounted by ``incidentbot.app.build_app`` only when no real Slack credentials are set (the
in-process stand-in ``incidentbot.localslack`` plays Slack). Everything a person does here goes to
the bot exactly as Slack would send it: signed slash commands, button clicks and modal
submissions through :class:`incidentbot.localslack.SlackSimulator` to ``/slack/events``.

Routes: ``GET /`` (console), ``GET /console/state`` (JSON fragments for live updates),
``POST /console/command|click|submit|close``, ``GET /h/{hid}``, ``GET /h/{hid}/chart.svg``,
static files under ``/console/static``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool

from incidentbot.blocks import esc
from incidentbot.console.chart import timeline_svg
from incidentbot.console.guard import ConsoleGuard
from incidentbot.console.mrkdwn import mrkdwn, plain
from incidentbot.hosts import HostAllowList
from incidentbot.ids import IdError, parse_id
from incidentbot.localslack import SlackSimulator
from incidentbot.models import OPEN_STATUSES

__all__ = ["mount_console", "hypothesis_page_data"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CHART_EVENT_LIMIT = 200_000


def _ts_label(ts: str) -> str:
    try:
        return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%H:%M:%S")
    except (TypeError, ValueError):
        return ""


def _dt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _hid_number(text: str) -> int | None:
    try:
        return parse_id(text, expect="H")[1]
    except (IdError, ValueError):
        return None


def hypothesis_page_data(rt, hid_text: str) -> dict | None:
    """Everything the hypothesis page shows, or None when there is no such hypothesis (the
    queries are the read model's: the console only renders)."""
    if _hid_number(hid_text) is None:
        return None
    try:
        return rt.read_model.hypothesis_page(hid_text, chart_limit=CHART_EVENT_LIMIT)
    except LookupError:
        return None


def mount_console(app: FastAPI, rt, *, slack, port: int, token: str | None) -> None:
    """Add the console routes to `app`. Only for the local stand-in: never with real Slack.

    ``token``: what the demo feeder sends events and asks for analyses with over the real API;
    the wiring that built the API made it one of the API's credentials (scope ``events``)."""
    ws = slack.workspace
    if ws is None or rt.settings.uses_real_slack or token is None:
        log.info("real Slack configured: the local console is not mounted")
        return
    app.state.console_token = token
    guard = ConsoleGuard(allowed=HostAllowList.for_settings(rt.settings), metrics=rt.metrics)
    app.state.console_guard = guard
    # Every route of this app, not only the console's: the API and the local Slack stand-in are
    # on the same origin, and a rebinding page must reach none of them.
    app.add_middleware(guard.host_middleware())
    base = f"http://127.0.0.1:{port}"
    sim = SlackSimulator(
        ws,
        bot_url=f"{base}/slack/events",
        signing_secret=slack.signing_secret,
        localslack_url=f"{base}/localslack",
        timeout=30.0,
    )
    app.state.console_simulator = sim
    settings = rt.settings
    public = (settings.public_url or "").rstrip("/")
    default_channel = (
        ws.channel_id(settings.alert_channel or "")
        or ws.channel_id("C0INCIDENTS")
        or next((c["id"] for c in ws.channels() if not c.get("is_im")), None)
    )

    def user_name(uid: str) -> str | None:
        u = ws.user(uid)
        return (u.get("profile") or {}).get("display_name") or u.get("name") if u else None

    def rewrite_url(url: str) -> str:
        if public and (url == public or url.startswith(public + "/")):
            return url[len(public) :] or "/"
        return url

    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["mrkdwn"] = lambda text: mrkdwn(text, users=user_name, rewrite_url=rewrite_url)
    env.filters["plain"] = plain
    env.filters["ts_label"] = _ts_label
    env.filters["dt"] = _dt
    env.filters["local_url"] = rewrite_url
    env.filters["tojson_attr"] = lambda v: json.dumps(v)
    env.globals["user_name"] = user_name
    env.globals["command"] = settings.slash_command

    def render(name: str, status: int = 200, *, session: str, **ctx) -> HTMLResponse:
        page = HTMLResponse(
            env.get_template(name).render(csrf=guard.csrf_token(session), **ctx),
            status_code=status,
            headers={
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
            },
        )
        guard.set_cookie(page, session)
        return page

    # -- who and where ----------------------------------------------------------------------------

    def humans() -> list[dict]:
        return [u for u in ws.users() if not u.get("is_bot") and not u.get("deleted")]

    def resolve_user(value: str | None) -> dict:
        people = humans()
        if value:
            for u in people:
                if value in (u["id"], u["name"]):
                    return u
        if not people:
            raise HTTPException(400, detail="the local workspace has no users")
        return people[0]

    def resolve_channel(value: str | None) -> str:
        cid = ws.channel_id(value) if value else None
        cid = cid or default_channel
        if cid is None:
            raise HTTPException(404, detail="no channel")
        return cid

    def feed_items(cid: str, uid: str) -> list[dict]:
        items = []
        for m in ws.messages(cid):
            m["replies"] = ws.replies(cid, m["ts"]) if m.get("reply_count") else []
            m["kind"] = "message"
            items.append(m)
        for e in ws.ephemeral_for(uid):
            if e.get("channel") == cid:
                e["kind"] = "ephemeral"
                items.append(e)
        items.sort(key=lambda m: float(m["ts"]))
        return items

    def open_hypotheses() -> list[dict]:
        try:
            return rt.read_model.hypotheses_list(status=",".join(OPEN_STATUSES), limit=30)
        except Exception:  # noqa: BLE001 - the sidebar is a convenience
            log.debug("sidebar hypotheses failed", exc_info=True)
            return []

    def snapshot(cid: str, user: dict, *, session: str) -> dict:
        version = ws.version  # read first: a change while rendering is caught by the next wait
        views = ws.views_for(user["id"])
        view = views[-1] if views else None
        ctx = dict(
            csrf=guard.csrf_token(session),
            user=user,
            channel=ws.channel(cid),
            items=feed_items(cid, user["id"]),
            view=view,
            hypotheses=open_hypotheses(),
        )
        return {
            "version": version,
            "feed_html": env.get_template("_feed.html").render(**ctx),
            "modal_html": env.get_template("_modal.html").render(**ctx),
            "modal_key": f"{view['id']}:{view['hash']}:{json.dumps(view.get('errors') or {}, sort_keys=True)}"
            if view
            else "",
            "side_html": env.get_template("_side.html").render(**ctx),
        }

    # -- request helpers --------------------------------------------------------------------------

    async def read_input(request: Request) -> dict[str, Any]:
        ctype = request.headers.get("content-type", "")
        if "application/json" in ctype:
            try:
                data = await request.json()
            except ValueError:
                raise HTTPException(400, detail="body is not valid JSON") from None
            if not isinstance(data, dict):
                raise HTTPException(400, detail="expected a JSON object")
            return data
        # application/x-www-form-urlencoded, parsed here (no python-multipart dependency)
        raw = await request.body()
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=500))
        except (UnicodeDecodeError, ValueError):
            raise HTTPException(400, detail="expected a urlencoded form or JSON") from None

    def wants_json(request: Request) -> bool:
        return "application/json" in request.headers.get("accept", "") or "application/json" in request.headers.get(
            "content-type", ""
        )

    def done(request: Request, data: dict, body: dict, status: int = 200):
        if wants_json(request):
            return JSONResponse(body, status_code=status)
        q = {"user": data.get("user") or "", "channel": data.get("channel") or ""}
        if status >= 400:
            q["error"] = str(body.get("error") or "failed")[:300]
        return RedirectResponse("/?" + urlencode({k: v for k, v in q.items() if v}), status_code=303)

    def ack_summary(resp) -> dict:
        return {
            "ok": resp.status == 200,
            "status": resp.status,
            "elapsed": round(resp.elapsed, 3),
            "body": resp.text[:2000],
        }

    # -- pages ------------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def console_page(request: Request, user: str | None = None, channel: str | None = None, error: str | None = None):
        session = guard.page_session(request)
        u = resolve_user(user)
        cid = resolve_channel(channel)
        snap = snapshot(cid, u, session=session)
        chans = [c for c in ws.channels() if not c.get("is_im")]
        return render(
            "console.html",
            session=session,
            user=u,
            users=humans(),
            channel=ws.channel(cid),
            channels=chans,
            snap=snap,
            error=error,
        )

    @app.get("/console/state", include_in_schema=False)
    def console_state(session: str = Depends(guard.session), user: str | None = None, channel: str | None = None):
        return JSONResponse(
            snapshot(resolve_channel(channel), resolve_user(user), session=session),
            headers={"Cache-Control": "no-store"},
        )

    @app.post("/console/command", include_in_schema=False)
    async def console_command(request: Request):
        data = await read_input(request)
        guard.check_state_change(request, data)
        u = resolve_user(data.get("user"))
        cid = resolve_channel(data.get("channel"))
        text = str(data.get("text") or "").strip()
        if not text:
            return done(request, data, {"ok": False, "error": "type a message or a command"}, 400)
        if not text.startswith("/"):
            # an ordinary message, typed by the user, Slack-escaped like Slack does
            msg = await run_in_threadpool(ws.post_message, cid, text=esc(text), user=u["id"])
            return done(request, data, {"ok": True, "ts": msg["ts"]})
        command, _, rest = text.partition(" ")
        if command != settings.slash_command:
            ws.post_ephemeral(
                cid,
                u["id"],
                text=f"`{command[:40]}` is not a valid command. Try `{settings.slash_command} help`.",
                source="console",
            )
            return done(request, data, {"ok": False, "error": f"{command[:40]} is not a valid command"}, 400)
        resp = await run_in_threadpool(sim.slash_command, command, rest.strip(), user=u["id"], channel=cid)
        del sim.acks[:-50]
        return done(request, data, ack_summary(resp), 200 if resp.status == 200 else 502)

    @app.post("/console/click", include_in_schema=False)
    async def console_click(request: Request):
        data = await read_input(request)
        guard.check_state_change(request, data)
        u = resolve_user(data.get("user"))
        action_id = str(data.get("action_id") or "")
        if not action_id:
            return done(request, data, {"ok": False, "error": "action_id is required"}, 400)
        view_id = data.get("view_id") or None
        ephemeral_ts = data.get("ephemeral_ts") or None
        message_ts = data.get("message_ts") or None
        channel = None if view_id else resolve_channel(data.get("channel"))
        if not (view_id or ephemeral_ts or message_ts):
            return done(request, data, {"ok": False, "error": "message_ts, ephemeral_ts or view_id is required"}, 400)
        try:
            resp = await run_in_threadpool(
                lambda: sim.click_button(
                    user=u["id"],
                    action_id=action_id,
                    channel=channel,
                    message_ts=message_ts,
                    ephemeral_ts=ephemeral_ts,
                    view_id=view_id,
                    block_id=data.get("block_id") or None,
                    value=data.get("value") if data.get("value") not in (None, "") else None,
                )
            )
        except LookupError as exc:
            return done(request, data, {"ok": False, "error": str(exc)}, 404)
        del sim.acks[:-50]
        return done(request, data, ack_summary(resp), 200 if resp.status == 200 else 502)

    def view_values(view: dict, data: dict) -> dict:
        values: dict[str, dict[str, Any]] = (
            dict(data.get("values") or {}) if isinstance(data.get("values"), dict) else {}
        )
        for key, raw in data.items():
            if not key.startswith("field:"):
                continue
            try:
                block_id, action_id = json.loads(key[6:])
            except (ValueError, TypeError):
                continue
            values.setdefault(str(block_id), {})[str(action_id)] = raw
        out: dict[str, dict[str, Any]] = {}
        elements = {
            (b.get("block_id"), (b.get("element") or {}).get("action_id")): b.get("element") or {}
            for b in view.get("blocks") or []
            if b.get("type") == "input"
        }
        for bid, actions in values.items():
            for aid, v in (actions or {}).items():
                el = elements.get((bid, aid), {})
                if isinstance(v, dict):
                    state = v
                elif el.get("type") == "static_select":
                    opt = next((o for o in el.get("options") or [] if o.get("value") == v), None)
                    state = {"type": "static_select", "selected_option": opt}
                else:
                    state = {"type": "plain_text_input", "value": v if v not in ("",) else None}
                out.setdefault(bid, {})[aid] = state
        return out

    @app.post("/console/submit", include_in_schema=False)
    async def console_submit(request: Request):
        data = await read_input(request)
        guard.check_state_change(request, data)
        u = resolve_user(data.get("user"))
        view_id = data.get("view_id") or None
        stack = ws.views_for(u["id"])
        view = next((v for v in stack if v["id"] == view_id), None) if view_id else (stack[-1] if stack else None)
        if view is None:
            return done(request, data, {"ok": False, "error": "no open form"}, 404)
        values = view_values(view, data)
        try:
            resp = await run_in_threadpool(lambda: sim.submit_view(user=u["id"], values=values, view_id=view["id"]))
        except LookupError as exc:
            return done(request, data, {"ok": False, "error": str(exc)}, 404)
        del sim.acks[:-50]
        body = ack_summary(resp)
        still = ws.find_view(view_id=view["id"])
        body["errors"] = (still or {}).get("errors") or {}
        return done(request, data, body, 200 if resp.status == 200 else 502)

    @app.post("/console/close", include_in_schema=False)
    async def console_close(request: Request):
        data = await read_input(request)
        guard.check_state_change(request, data)
        u = resolve_user(data.get("user"))
        ws.close_view(u["id"])
        return done(request, data, {"ok": True})

    # -- hypothesis pages -------------------------------------------------------------------------

    def not_found(hid: str, session: str) -> HTMLResponse:
        return render("404.html", status=404, session=session, what=hid)

    @app.get("/h/{hid}", include_in_schema=False, response_class=HTMLResponse)
    def hypothesis_page(request: Request, hid: str):
        session = guard.page_session(request)
        data = hypothesis_page_data(rt, hid)
        if data is None:
            return not_found(hid, session)
        chart = timeline_svg(data["points"], titles=data["titles"])
        return render("hypothesis.html", session=session, chart=chart, **data)

    @app.get("/h/{hid}/chart.svg", include_in_schema=False)
    def hypothesis_chart(request: Request, hid: str):
        session = guard.page_session(request)
        data = hypothesis_page_data(rt, hid)
        if data is None:
            return not_found(hid, session)
        svg = timeline_svg(data["points"], titles=data["titles"], standalone=True)
        return Response(
            str(svg),
            media_type="image/svg+xml",
            headers={
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            },
        )

    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
