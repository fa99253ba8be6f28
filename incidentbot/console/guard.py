"""What keeps the local console to the person at this machine's browser.

- Every request to the app (console, API, local Slack) must carry a ``Host`` on the allow-list
  (loopback names and INCIDENTBOT_PUBLIC_URL's host): a DNS-rebinding page, served under its own
  name and then pointed at 127.0.0.1, is refused before any route runs.
- The console's reads go through its own session: a cookie (HttpOnly, SameSite=Strict) that the
  console's pages set, signed with a per-process key, so nothing is stored for it. It is not an
  API credential; ``/v1`` routes never look at it.
- A state-changing request (``POST /console/…``) needs two same-origin proofs: an ``Origin``
  header that is present, not ``null``, and names the request's own allowed Host; and a CSRF
  token (form field ``csrf`` or header ``X-CSRF-Token``) derived from the session cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.responses import Response

from incidentbot.hosts import HostAllowList

__all__ = ["ConsoleGuard", "SESSION_COOKIE"]

audit = logging.getLogger("incidentbot.audit")

SESSION_COOKIE = "incidentbot_console"


class ConsoleGuard:
    def __init__(self, *, allowed: HostAllowList, metrics, key: bytes | None = None):
        self.allowed = allowed
        self.metrics = metrics
        self._key = key or secrets.token_bytes(32)

    # -- the session --------------------------------------------------------------------

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def _valid(self, cookie: str | None) -> str | None:
        if not cookie or "." not in cookie:
            return None
        sid, _, mac = cookie.partition(".")
        return cookie if hmac.compare_digest(mac, self._sign("session", sid)) else None

    def page_session(self, request: Request) -> str:
        """The session of a page view: the one the cookie holds, or a new one (set by the page)."""
        existing = self._valid(request.cookies.get(SESSION_COOKIE))
        if existing:
            return existing
        sid = secrets.token_urlsafe(18)
        return f"{sid}.{self._sign('session', sid)}"

    def set_cookie(self, response: Response, session: str) -> None:
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", path="/")

    def csrf_token(self, session: str) -> str:
        return self._sign("csrf", session)

    def _refuse(self, request: Request, reason: str, detail: str) -> HTTPException:
        self.metrics.auth_failures.labels(reason).inc()
        peer = request.client.host if request.client else "?"
        audit.warning("console request refused: %s %s from %s: %s", request.method, request.url.path, peer, detail)
        return HTTPException(403, detail=detail)

    def session(self, request: Request) -> str:
        """A dependency for the console's own reads (``/console/state``)."""
        session = self._valid(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise self._refuse(request, "console_session", "no console session: open the console page (/) first")
        return session

    def check_state_change(self, request: Request, data: dict) -> None:
        """Origin present and same-origin, and the session's CSRF token; 403 otherwise."""
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        if not origin or origin == "null":
            raise self._refuse(
                request, "console_csrf", "a console action needs an Origin header (send it from the console page)"
            )
        parts = urlsplit(origin)
        if (
            parts.netloc.lower() != host.lower()
            or not self.allowed.allows(parts.netloc)
            or parts.scheme not in ("http", "https")
        ):
            raise self._refuse(request, "console_csrf", "cross-origin requests are not accepted by the local console")
        session = self.session(request)
        sent = request.headers.get("x-csrf-token") or str(data.get("csrf") or "")
        if not hmac.compare_digest(sent.encode(), self.csrf_token(session).encode()):
            raise self._refuse(request, "console_csrf", "missing or stale console token: reload the console page")

    # -- the Host allow-list ------------------------------------------------------------

    def host_middleware(self):
        def on_refuse(scope, host):
            self.metrics.auth_failures.labels("host").inc()
            peer = (scope.get("client") or ("?",))[0]
            audit.warning(
                "request refused: Host %r is not one this service answers to (%s %s from %s)",
                (host or "")[:200],
                scope.get("method", "WS"),
                scope.get("path", "")[:200],
                peer,
            )

        return self.allowed.middleware(on_refuse=on_refuse)
