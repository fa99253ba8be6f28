"""A local stand-in for Slack's Web API, served by FastAPI.

Routes (relative to wherever the app is mounted, e.g. `/localslack`):

- `POST|GET /api/{method}` — the Web API methods in `METHODS`. Token from `Authorization: Bearer`
  or a `token` param; body JSON (`application/json`), form-encoded or multipart, plus query
  params — what slack_sdk's `WebClient` sends (JSON for chat.postMessage/update/postEphemeral
  and views.*, form-encoded for the rest). Errors are HTTP 200 `{"ok": false, "error": ...}`
  like Slack, except injected faults (HTTP 429 with `Retry-After`, or 5xx).
- `POST /response/{token}` — response_url posts (JSON), see `Workspace.use_response_url`.
- `GET /state` — summary (version, team, bot, users, channels).
- `GET /state/channels/{channel}` — `{"version", "channel", "messages": [... {"ts", "text",
  "blocks", "edit_count", "history", "reply_count", "replies": [...]}]}` (id or name).
- `GET /state/ephemeral/{user}` — `{"version", "messages": [...]}` ephemeral messages shown to a user.
- `GET /state/views/{user}` — `{"version", "views": [...]}` open view stack (bottom first).
- `GET /state/calls?method=chat.update` — `{"version", "calls": [...]}` the request log.
- `GET /state/wait?after=N&timeout=25` — long-poll: returns `{"version"}` once version > N.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from .calllog import CallRecord
from .state import Workspace
from .validation import parse_json_param, validate_message, validate_view

JSON_PARAMS = ("blocks", "attachments", "view", "metadata", "user_auth_blocks")


class ApiError(Exception):
    def __init__(self, error: str, messages: list[str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []
        self.extra = extra


def _parse_multipart(body: bytes, content_type: str) -> dict[str, str]:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    out: dict[str, str] = {}
    if msg.is_multipart():
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                payload = part.get_payload(decode=True)  # bytes, or None when the part is empty
                out[str(name)] = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return out


async def read_params(request: Request) -> tuple[dict[str, Any], str]:
    """Merge query params and body (JSON, urlencoded or multipart) into one dict."""
    params: dict[str, Any] = dict(request.query_params)
    ctype = request.headers.get("content-type", "")
    body = await request.body()
    if body:
        if "json" in ctype:
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise ApiError("invalid_json") from exc
            if not isinstance(data, dict):
                raise ApiError("invalid_json")
            params.update(data)
        elif ctype.startswith("multipart/form-data"):
            params.update(_parse_multipart(body, ctype))
        else:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    for key in JSON_PARAMS:
        if key in params:
            params[key] = parse_json_param(params[key])
    return params, ctype


def _truthy(v: Any) -> bool:
    return v is True or str(v).lower() in ("1", "true")


def _int(params: dict, key: str, default: int) -> int:
    try:
        return int(params.get(key) or default)
    except (TypeError, ValueError):
        raise ApiError("invalid_arguments", [f"[ERROR] {key} must be an integer"]) from None


class LocalSlackApi:
    """Method handlers. Each takes the merged params and returns the success payload (without ok)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.socket_url = ""  # ws://host:port/socket-mode, set from the first request that asks
        self.methods: dict[str, Callable[[dict], dict]] = {
            "apps.connections.open": self.apps_connections_open,
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.delete": self.chat_delete,
            "chat.getPermalink": self.chat_get_permalink,
            "conversations.info": self.conversations_info,
            "conversations.list": self.conversations_list,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
            "users.info": self.users_info,
            "usergroups.users.list": self.usergroups_users_list,
            "views.open": self.views_open,
            "views.update": self.views_update,
            "views.push": self.views_push,
        }

    # ------------------------------------------------------------------ Socket Mode
    def apps_connections_open(self, params: dict) -> dict:
        return {"url": f"{self.socket_url}?ticket={self.ws.socket_mode.new_ticket()}"}

    # ------------------------------------------------------------------ helpers
    def _channel(self, params: dict, key: str = "channel") -> str:
        raw = params.get(key)
        if not raw:
            raise ApiError("channel_not_found")
        raw = str(raw)
        cid = self.ws.channel_id(raw)
        if cid is None and raw.startswith(("U", "W")) and self.ws.user(raw):
            cid = self.ws.open_dm(raw)  # posting to a user id goes to the DM, like Slack
        if cid is None:
            raise ApiError("channel_not_found")
        return cid

    def _message_params(self, params: dict, *, require_content: bool = True) -> None:
        problem = validate_message(params, require_content=require_content)
        if problem:
            raise ApiError(problem[0], problem[1])

    @staticmethod
    def _extra(params: dict) -> dict:
        skip = {"channel", "text", "blocks", "attachments", "thread_ts", "ts", "metadata", "token", "user"}
        return {k: v for k, v in params.items() if k not in skip}

    # ------------------------------------------------------------------ auth
    def auth_test(self, params: dict) -> dict:
        ws = self.ws
        return {
            "url": f"https://{ws.team_name}.slack.local/",
            "team": ws.team_name,
            "user": ws.bot_name,
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": False,
        }

    # ------------------------------------------------------------------ chat
    def chat_post_message(self, params: dict) -> dict:
        cid = self._channel(params)
        ch = self.ws.channel(cid) or {}
        if ch.get("is_archived"):
            raise ApiError("is_archived")
        self._message_params(params)
        try:
            msg = self.ws.post_message(
                cid,
                text=params.get("text") or "",
                blocks=params.get("blocks"),
                thread_ts=params.get("thread_ts") or None,
                attachments=params.get("attachments"),
                metadata=params.get("metadata") if isinstance(params.get("metadata"), dict) else None,
                extra=self._extra(params),
            )
        except KeyError as exc:
            raise ApiError(str(exc.args[0])) from None
        return {"channel": cid, "ts": msg["ts"], "message": msg}

    def chat_update(self, params: dict) -> dict:
        cid = self._channel(params)
        ts = str(params.get("ts") or "")
        existing = self.ws.message(cid, ts) if ts else None
        if existing is None:
            raise ApiError("message_not_found")
        if existing.get("user") != self.ws.bot_user_id:
            raise ApiError("cant_update_message")
        self._message_params(params, require_content=False)
        blocks = params.get("blocks")
        text = params.get("text")
        msg = self.ws.update_message(
            cid,
            ts,
            text=text,
            blocks=blocks,
            attachments=params.get("attachments"),
            extra=self._extra(params),
        )
        return {"channel": cid, "ts": ts, "text": msg["text"], "message": msg}

    def chat_post_ephemeral(self, params: dict) -> dict:
        cid = self._channel(params)
        user = str(params.get("user") or "")
        if not self.ws.user(user):
            raise ApiError("user_not_found")
        if not self.ws.is_member(cid, user):
            raise ApiError("user_not_in_channel")
        self._message_params(params)
        e = self.ws.post_ephemeral(
            cid, user, text=params.get("text") or "", blocks=params.get("blocks"), thread_ts=params.get("thread_ts")
        )
        return {"message_ts": e["ts"]}

    def chat_delete(self, params: dict) -> dict:
        cid = self._channel(params)
        ts = str(params.get("ts") or "")
        existing = self.ws.message(cid, ts) if ts else None
        if existing is None:
            raise ApiError("message_not_found")
        if existing.get("user") != self.ws.bot_user_id:
            raise ApiError("cant_delete_message")
        self.ws.delete_message(cid, ts)
        return {"channel": cid, "ts": ts}

    def chat_get_permalink(self, params: dict) -> dict:
        cid = self._channel(params)
        ts = str(params.get("message_ts") or "")
        if not ts or self.ws.message(cid, ts) is None:
            raise ApiError("message_not_found")
        return {
            "channel": cid,
            "permalink": f"https://{self.ws.team_name}.slack.local/archives/{cid}/p{ts.replace('.', '')}",
        }

    # ------------------------------------------------------------------ conversations
    def conversations_info(self, params: dict) -> dict:
        cid = self._channel(params)
        return {"channel": self.ws.channel(cid)}

    def conversations_list(self, params: dict) -> dict:
        types = set(str(params.get("types") or "public_channel").split(","))
        exclude_archived = _truthy(params.get("exclude_archived"))
        chans = []
        for ch in self.ws.channels():
            kind = "im" if ch.get("is_im") else ("private_channel" if ch.get("is_private") else "public_channel")
            if kind not in types or (exclude_archived and ch.get("is_archived")):
                continue
            chans.append(ch)
        return self._page(chans, params, "channels", default_limit=100)

    @staticmethod
    def _page(items: list, params: dict, key: str, *, default_limit: int) -> dict:
        limit = max(1, min(_int(params, "limit", default_limit), 1000))
        start = _int(params, "cursor", 0) if params.get("cursor") else 0
        page = items[start : start + limit]
        nxt = str(start + limit) if start + limit < len(items) else ""
        return {key: page, "has_more": bool(nxt), "response_metadata": {"next_cursor": nxt}}

    @staticmethod
    def _public(m: dict) -> dict:
        return {k: v for k, v in m.items() if k not in ("channel", "edit_count", "history", "extra", "replies")}

    def conversations_history(self, params: dict) -> dict:
        cid = self._channel(params)
        msgs = [self._public(m) for m in self.ws.messages(cid)]
        latest = params.get("latest")
        oldest = params.get("oldest")
        inclusive = _truthy(params.get("inclusive"))

        try:
            lo = float(oldest) if oldest else None
            hi = float(latest) if latest else None
        except (TypeError, ValueError):
            raise ApiError("invalid_ts_oldest" if oldest else "invalid_ts_latest") from None

        def in_range(ts: str) -> bool:
            t = float(ts)
            if hi is not None and (t > hi or (not inclusive and t == hi)):
                return False
            if lo is not None and (t < lo or (not inclusive and t == lo)):
                return False
            return True

        msgs = [m for m in msgs if in_range(m["ts"])]
        msgs.reverse()  # newest first, like Slack
        return self._page(msgs, params, "messages", default_limit=100)

    def conversations_replies(self, params: dict) -> dict:
        cid = self._channel(params)
        ts = str(params.get("ts") or "")
        parent = self.ws.message(cid, ts) if ts else None
        if parent is None:
            raise ApiError("thread_not_found")
        root = parent.get("thread_ts") or ts
        if root != ts:
            parent = self.ws.message(cid, root) or parent
        msgs = [self._public(parent)] + [self._public(r) for r in self.ws.replies(cid, root)]
        return self._page(msgs, params, "messages", default_limit=1000)

    # ------------------------------------------------------------------ users
    def users_info(self, params: dict) -> dict:
        u = self.ws.user(str(params.get("user") or ""))
        if not u:
            raise ApiError("user_not_found")
        return {"user": u}

    def usergroups_users_list(self, params: dict) -> dict:
        users = self.ws.usergroup_users(str(params.get("usergroup") or ""))
        if users is None:
            raise ApiError("no_such_subteam")
        return {"users": users}

    # ------------------------------------------------------------------ views
    def _view_param(self, params: dict) -> dict:
        view = params.get("view")
        problem = validate_view(view)
        if problem:
            raise ApiError(problem[0], problem[1])
        return view  # type: ignore[return-value]

    def _trigger_user(self, params: dict) -> str:
        tid = str(params.get("trigger_id") or "")
        if not tid:
            raise ApiError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        try:
            return self.ws.consume_trigger(tid)
        except KeyError as exc:
            raise ApiError(str(exc.args[0])) from None

    def views_open(self, params: dict) -> dict:
        user = self._trigger_user(params)
        view = self._view_param(params)
        return {"view": self.ws.open_view(user, view)}

    def views_push(self, params: dict) -> dict:
        user = self._trigger_user(params)
        view = self._view_param(params)
        try:
            return {"view": self.ws.open_view(user, view, push=True)}
        except KeyError as exc:
            raise ApiError(str(exc.args[0])) from None

    def views_update(self, params: dict) -> dict:
        view = self._view_param(params)
        view_id, external_id = params.get("view_id"), params.get("external_id")
        if not view_id and not external_id:
            raise ApiError("invalid_arguments", ["[ERROR] view_id or external_id required"])
        try:
            stored = self.ws.update_view(view, view_id=view_id, external_id=external_id, hash=params.get("hash"))
        except KeyError as exc:
            raise ApiError(str(exc.args[0])) from None
        return {"view": stored}

    # ------------------------------------------------------------------ dispatch
    def call(self, method: str, params: dict, headers: dict[str, str], content_type: str) -> JSONResponse:
        """Answer one Web API request: fault injection, auth, method, logging."""
        ws = self.ws
        logged = {k: v for k, v in params.items() if k != "token"}

        def done(status: int, body: dict, extra_headers: dict | None = None) -> JSONResponse:
            ws.record_call(
                CallRecord(
                    method=method,
                    params=logged,
                    status=status,
                    ok=bool(body.get("ok")),
                    error=body.get("error"),
                    at=time.time(),
                    content_type=content_type,
                )
            )
            return JSONResponse(body, status_code=status, headers=extra_headers)

        fault = ws.take_fault(method)
        if fault is not None:
            if fault.status == 429:
                retry_after = fault.retry_after if fault.retry_after is not None else 1
                return done(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
            err = "service_unavailable" if fault.status == 503 else "internal_error"
            return done(fault.status, {"ok": False, "error": err})

        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        token = token or str(params.get("token") or "")
        if not token:
            return done(200, {"ok": False, "error": "not_authed"})
        if token not in ws.tokens and token != ws.app_token:
            return done(200, {"ok": False, "error": "invalid_auth"})
        # An app-level token opens Socket Mode connections and does nothing else; a bot token
        # cannot open them.
        if (token == ws.app_token) != (method == "apps.connections.open"):
            return done(200, {"ok": False, "error": "not_allowed_token_type"})

        handler = self.methods.get(method)
        if handler is None:
            return done(200, {"ok": False, "error": "unknown_method"})
        channel_key = str(params.get("channel") or "")
        channel_key = ws.channel_id(channel_key) or channel_key
        wait = ws.check_rate_limit(method, channel_key)
        if wait is not None:
            return done(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)})
        try:
            result = handler(params)
        except ApiError as exc:
            body: dict[str, Any] = {"ok": False, "error": exc.error, **exc.extra}
            if exc.messages:
                body["response_metadata"] = {"messages": exc.messages}
            return done(200, body)
        return done(200, {"ok": True, **result})


def create_app(workspace: Workspace) -> FastAPI:
    """The local Slack app; serve it standalone (`server.run_in_thread`) or `parent.mount("/localslack", app)`."""
    api = LocalSlackApi(workspace)
    app = FastAPI(title="localslack", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.workspace = workspace
    app.state.api = api

    @app.api_route("/api/{method}", methods=["GET", "POST"])
    async def web_api(method: str, request: Request) -> JSONResponse:
        if method == "apps.connections.open":
            api.socket_url = str(request.url_for("socket_mode")).replace("http", "ws", 1)
        try:
            params, ctype = await read_params(request)
        except ApiError as exc:
            return JSONResponse({"ok": False, "error": exc.error})
        headers = {k.lower(): v for k, v in request.headers.items()}
        return await run_in_threadpool(api.call, method, params, headers, ctype)

    @app.websocket("/socket-mode", name="socket_mode")
    async def socket_mode(websocket: WebSocket) -> None:
        await workspace.socket_mode.serve(websocket)

    @app.post("/response/{token}")
    async def response_url(token: str, request: Request):
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        for key in ("blocks", "attachments"):
            if key in body:
                body[key] = parse_json_param(body[key])
        logged = dict(body)

        def handle() -> tuple[int, str, dict | None]:
            fault = workspace.take_fault("response_url")
            if fault is not None:
                retry_after = fault.retry_after if fault.retry_after is not None else 1
                hdrs = {"Retry-After": str(retry_after)} if fault.status == 429 else None
                return fault.status, "rate_limited" if fault.status == 429 else "internal_error", hdrs
            deleting = _truthy(body.get("delete_original"))
            problem = None if deleting else validate_message(body)
            if problem:
                return 400, problem[0], None
            status, text = workspace.use_response_url(token, body)
            return status, text, None

        status, text, hdrs = await run_in_threadpool(handle)
        workspace.record_call(
            CallRecord(
                method="response_url",
                params={"token": token, **logged},
                status=status,
                ok=status == 200,
                error=None if status == 200 else text,
                at=time.time(),
                content_type=request.headers.get("content-type", ""),
            )
        )
        return PlainTextResponse(text, status_code=status, headers=hdrs)

    # ------------------------------------------------------------------ JSON state for the console
    @app.get("/state")
    def state_summary() -> dict:
        return {
            "version": workspace.version,
            "team_id": workspace.team_id,
            "bot_user_id": workspace.bot_user_id,
            "users": workspace.users(),
            "channels": workspace.channels(),
        }

    @app.get("/state/channels/{channel}")
    def state_channel(channel: str):
        try:
            return workspace.snapshot_channel(channel)
        except KeyError:
            return JSONResponse({"error": "channel_not_found"}, status_code=404)

    @app.get("/state/ephemeral/{user}")
    def state_ephemeral(user: str) -> dict:
        return {"version": workspace.version, "messages": workspace.ephemeral_for(user)}

    @app.get("/state/views/{user}")
    def state_views(user: str) -> dict:
        return {"version": workspace.version, "views": workspace.views_for(user)}

    @app.get("/state/calls")
    def state_calls(method: str | None = None) -> dict:
        return {"version": workspace.version, "calls": [c.to_dict() for c in workspace.calls(method)]}

    @app.get("/state/wait")
    def state_wait(after: int = 0, timeout: float = 25.0) -> dict:
        # sync endpoint: FastAPI runs it in the thread pool, so the event loop stays free
        return {"version": workspace.wait_for_version(after, timeout=min(max(timeout, 0.0), 60.0))}

    return app
