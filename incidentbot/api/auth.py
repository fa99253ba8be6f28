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
import logging
from dataclasses import dataclass

from fastapi import HTTPException, Request

from incidentbot.hosts import HostAllowList, is_loopback

__all__ = ["Credentials", "SCOPES"]

audit = logging.getLogger("incidentbot.audit")

SCOPES = ("events", "alertmanager", "read", "metrics")
# What a token limited to one scope may also do: an ingest token may read back what it sent.
_IMPLIES = {"events": {"read"}, "alertmanager": {"read"}}


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
