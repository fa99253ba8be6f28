"""Bearer-token authentication for the HTTP API, as FastAPI dependencies.

Every ``/v1`` route takes one (reads too: failure texts are what a token protects). A token is
configured in ``INCIDENTBOT_INGEST_TOKENS``, optionally limited to one scope (``events``,
``alertmanager``, ``read``, ``metrics``); a plain token may do everything. Credentials that are
not settings (the local console's per-process token for its demo feeder) are added to the same
table with :meth:`Credentials.add` by whoever owns them; nothing here knows about the console.

A failed authentication is counted (``incidentbot_requests_refused_total{reason="unauthorized"}``
and ``incidentbot_auth_failures_total{reason}``) and written to the audit log with the peer
address, never with the token that was sent.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from dataclasses import dataclass

from fastapi import HTTPException, Request

__all__ = ["Credentials", "HostAllowList", "SCOPES", "is_loopback"]

audit = logging.getLogger("incidentbot.audit")

SCOPES = ("events", "alertmanager", "read", "metrics")
# What a token limited to one scope may also do: an ingest token may read back what it sent.
_IMPLIES = {"events": {"read"}, "alertmanager": {"read"}}


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def host_name(host_header: str) -> str:
    """``Host`` header → the host name alone (no port, no IPv6 brackets), lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


@dataclass(frozen=True, slots=True)
class HostAllowList:
    """The names a request's ``Host`` may carry: loopback names and INCIDENTBOT_PUBLIC_URL's host.
    A page served under any other name (a DNS-rebinding attacker's) gets nothing."""

    names: frozenset[str]

    @classmethod
    def for_settings(cls, settings) -> HostAllowList:
        from urllib.parse import urlsplit

        public = (urlsplit(settings.public_url or "").hostname or "").lower()
        return cls(LOOPBACK_NAMES | ({public} if public else set()))

    def allows(self, host_header: str | None) -> bool:
        return bool(host_header and host_name(host_header) in self.names)

    def middleware(self, *, on_refuse):
        """A pure ASGI middleware refusing (400) any HTTP request whose Host is not allowed."""
        allow = self

        def wrap(app):
            async def guarded(scope, receive, send):
                if scope["type"] in ("http", "websocket"):
                    host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), None)
                    if not allow.allows(host):
                        on_refuse(scope, host)
                        if scope["type"] == "websocket":
                            await send({"type": "websocket.close", "code": 1008})
                            return
                        body = b'{"detail":"this service does not answer to that Host name"}'
                        await send(
                            {
                                "type": "http.response.start",
                                "status": 400,
                                "headers": [
                                    (b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()),
                                ],
                            }
                        )
                        await send({"type": "http.response.body", "body": body})
                        return
                await app(scope, receive, send)

            return guarded

        return wrap


@dataclass(frozen=True, slots=True)
class _Credential:
    secret: bytes
    scope: str | None  # None: every scope
    who: str


class Credentials:
    """The accepted bearer tokens, and the dependencies that check them."""

    def __init__(self, tokens: dict[str, str | None], *, metrics, hosts: HostAllowList):
        self.metrics = metrics
        self.hosts = hosts
        self._known: list[_Credential] = [
            _Credential(t.encode(), scope, f"{scope or 'any'} token #{n + 1}")
            for n, (t, scope) in enumerate(tokens.items())
        ]

    def add(self, token: str, *, scope: str | None, who: str) -> None:
        self._known.append(_Credential(token.encode(), scope, who))

    def match(self, token: str) -> _Credential | None:
        sent = token.encode("utf-8", errors="surrogateescape")
        matched = None
        # Compare against every token so timing says nothing about which one came close.
        for cred in self._known:
            if hmac.compare_digest(cred.secret, sent):
                matched = cred
        return matched

    def refuse(self, request: Request, reason: str, status: int, detail: str):
        path = _route_path(request)
        self.metrics.refused.labels(path, "unauthorized" if status == 401 else "forbidden").inc()
        self.metrics.auth_failures.labels(reason).inc()
        peer = request.client.host if request.client else "?"
        audit.warning("authentication refused: %s %s from %s: %s", request.method, path, peer, reason)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return HTTPException(status, detail=detail, headers=headers)

    def require(self, scope: str):
        """A dependency: the request carries a bearer token allowed ``scope``; 401/403 otherwise."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")

        def check(request: Request) -> str:
            header = request.headers.get("authorization", "")
            kind, _, token = header.partition(" ")
            if not header:
                raise self.refuse(request, "missing", 401, "missing bearer token")
            if kind.lower() != "bearer" or not token:
                raise self.refuse(request, "not_bearer", 401, "missing bearer token")
            cred = self.match(token)
            if cred is None:
                raise self.refuse(request, "invalid", 401, "invalid bearer token")
            if cred.scope is not None and scope != cred.scope and scope not in _IMPLIES.get(cred.scope, ()):
                raise self.refuse(request, "wrong_scope", 403, f"this token is limited to the {cred.scope} source")
            return cred.scope or "any"

        return check

    def require_local_or(self, scope: str):
        """A dependency for ``/metrics``: a loopback peer, or a token allowed ``scope``."""
        token_check = self.require(scope)

        def check(request: Request) -> str:
            # Loopback and a loopback/public Host name: a page that rebound its own name to
            # 127.0.0.1 still sends its own name as Host, so it gets no free pass.
            if (
                not request.headers.get("authorization")
                and request.client
                and is_loopback(request.client.host)
                and self.hosts.allows(request.headers.get("host"))
            ):
                return "loopback"
            return token_check(request)

        return check


def _route_path(request: Request) -> str:
    # The route's template (/v1/hypotheses/{hid}), not the path sent: a label per path a
    # stranger makes up would grow the metric without bound.
    route = request.scope.get("route")
    return getattr(route, "path", None) or "other"
