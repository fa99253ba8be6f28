"""``response_url``: the URLs Slack hands out with a command or a click, and what a post to one
does to the workspace (reply privately, post in the channel, replace or delete the source)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the workspace is this class's collaborator; it imports this module
    from .state import Workspace

__all__ = ["RESPONSE_URL_MAX_USES", "RESPONSE_URL_TTL_SECONDS", "ResponseUrls"]

RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL_SECONDS = 30 * 60


def _truthy(value) -> bool:
    return value is True or str(value).lower() in ("true", "1")


class ResponseUrls:
    """The response_url contexts of one workspace. ``clock``: monotonic seconds (the workspace's,
    read at each call); ``ttl``: seconds a URL stays usable."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        clock: Callable[[], float],
        ttl: float = RESPONSE_URL_TTL_SECONDS,
        lock: threading.RLock | None = None,
    ):
        self._ws = workspace
        self._clock = clock
        self.ttl = ttl
        self._lock = lock or threading.RLock()
        self._contexts: dict[str, dict] = {}

    def new(
        self,
        *,
        channel: str,
        user: str,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
        thread_ts: str | None = None,
    ) -> str:
        """Register a response_url context and return its token (the URL is `<base>/response/<token>`)."""
        with self._lock:
            token = secrets.token_urlsafe(12)
            self._contexts[token] = {
                "channel": self._ws.channel_id(channel) or channel,
                "user": user,
                "message_ts": message_ts,
                "is_ephemeral": is_ephemeral,
                "thread_ts": thread_ts,
                "created": self._clock(),
                "uses": 0,
            }
            return token

    def use(self, token: str, body: dict) -> tuple[int, str]:
        """Apply a response_url post like Slack. Returns (http_status, text body).

        Rules: ≤5 uses within 30 minutes (then 404 "used_url"/"expired_url"). `delete_original`
        deletes the source message; `replace_original` edits it (an ephemeral source is replaced in
        place); otherwise `response_type: in_channel` posts a new channel message (in the thread of
        the context, if any) and anything else shows an ephemeral message to the user.
        """
        ws = self._ws
        with self._lock:
            ctx = self._contexts.get(token)
            if ctx is None:
                return 404, "invalid_token"
            if self._clock() - ctx["created"] > self.ttl:
                return 404, "expired_url"
            if ctx["uses"] >= RESPONSE_URL_MAX_USES:
                return 404, "used_url"
            ctx["uses"] += 1
            text = body.get("text") or ""
            blocks = body.get("blocks")
            channel, user, mts = ctx["channel"], ctx["user"], ctx["message_ts"]
            if _truthy(body.get("delete_original")):
                if mts is None:
                    return 404, "message_not_found"
                if ctx["is_ephemeral"]:
                    if not ws.delete_ephemeral(user, mts):
                        return 404, "message_not_found"
                else:
                    try:
                        ws.delete_message(channel, mts)
                    except KeyError:
                        return 404, "message_not_found"
                return 200, "ok"
            if _truthy(body.get("replace_original")) and mts is not None:
                if ctx["is_ephemeral"]:
                    if not ws.replace_ephemeral(user, mts, text=text, blocks=blocks or []):
                        return 404, "message_not_found"
                else:
                    try:
                        ws.update_message(channel, mts, text=text, blocks=blocks or [])
                    except KeyError:
                        return 404, "message_not_found"
                return 200, "ok"
            if body.get("response_type") == "in_channel":
                try:
                    ws.post_message(
                        channel, text=text, blocks=blocks, thread_ts=body.get("thread_ts") or ctx["thread_ts"]
                    )
                except KeyError as exc:
                    return 404, str(exc.args[0]).split(":")[0]
            else:
                ws.post_ephemeral(channel, user, text=text, blocks=blocks, source="response_url")
            return 200, "ok"

    def uses(self, token: str) -> int:
        with self._lock:
            ctx = self._contexts.get(token)
            return ctx["uses"] if ctx else 0
