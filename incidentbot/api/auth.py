"""Bearer-token authentication for the HTTP API.

Every ``/v1`` route takes one (reads too: failure texts are what a token protects). A token is
configured in ``INCIDENTBOT_INGEST_TOKENS``, optionally limited to one scope (``events``,
``alertmanager``, ``read``, ``metrics``); a plain token may do everything. A credential that is
not a setting (the local console's per-process token for its demo feeder, scope ``events``) is
an ordinary :class:`Credential` handed to :meth:`Credentials.for_settings` by the wiring that
mints it (``incidentbot/app.py``); the table is fixed once built, and nothing here knows about
the console. The routes take these checks as ``Annotated`` dependencies (``api/deps.py``).

A failed authentication is counted (``incidentbot_requests_refused_total{reason="unauthorized"}``
and ``incidentbot_auth_failures_total{reason}``) and written to the audit log with the peer
address, never with the token that was sent.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import HTTPException, Request

from incidentbot.hosts import HostAllowList, is_loopback
from incidentbot.settings import TOKEN_SCOPES

__all__ = ["Credential", "Credentials", "SCOPES"]

audit = logging.getLogger("incidentbot.audit")

SCOPES = TOKEN_SCOPES  # one list, the one INCIDENTBOT_INGEST_TOKENS is checked against
# What a token limited to one scope may also do: an ingest token may read back what it sent.
_IMPLIES = {"events": {"read"}, "alertmanager": {"read"}}


@dataclass(frozen=True, slots=True)
class Credential:
    """One accepted bearer token: what it may do (``scope``; None: everything) and, for the
    audit log, whose it is (never the token itself)."""

    secret: bytes
    scope: str | None
    who: str

    @classmethod
    def of(cls, token: str, *, scope: str | None, who: str) -> Credential:
        if scope is not None and scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        return cls(token.encode(), scope, who)


class Credentials:
    """The access helper: the accepted bearer tokens, fixed when the app is built, and the
    checks the API's dependencies (``api/deps.py``) make with them."""

    def __init__(self, known: Iterable[Credential], *, metrics, hosts: HostAllowList):
        self.metrics = metrics
        self.hosts = hosts
        self._known: tuple[Credential, ...] = tuple(known)

    @classmethod
    def for_settings(
        cls, settings, *, metrics, hosts: HostAllowList | None = None, extra: Iterable[Credential] = ()
    ) -> Credentials:
        """The tokens of ``INCIDENTBOT_INGEST_TOKENS``, then ``extra`` (credentials that are not
        settings, such as the local console's per-process token for its demo feeder)."""
        configured = [
            Credential.of(token, scope=scope, who=f"{scope or 'any'} token #{n + 1}")
            for n, (token, scope) in enumerate(settings.token_sources().items())
        ]
        return cls(
            [*configured, *extra],
            metrics=metrics,
            hosts=hosts if hosts is not None else HostAllowList.for_settings(settings),
        )

    def match(self, token: str) -> Credential | None:
        sent = token.encode("utf-8", errors="surrogateescape")
        matched = None
        # Compare against every token so timing says nothing about which one came close.
        for cred in self._known:
            if hmac.compare_digest(cred.secret, sent):
                matched = cred
        return matched

    def refuse(self, request: Request, reason: str, status: int, detail: str) -> HTTPException:
        path = _route_path(request)
        self.metrics.refused.labels(path, "unauthorized" if status == 401 else "forbidden").inc()
        self.metrics.auth_failures.labels(reason).inc()
        peer = request.client.host if request.client else "?"
        audit.warning("authentication refused: %s %s from %s: %s", request.method, path, peer, reason)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return HTTPException(status, detail=detail, headers=headers)

    def authorize(self, request: Request, scope: str) -> str:
        """The request carries a bearer token allowed ``scope`` (its scope, or "any"); raises
        401/403 otherwise."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
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

    def authorize_local_or(self, request: Request, scope: str) -> str:
        """For ``/metrics``: a loopback peer ("loopback"), or a token allowed ``scope``."""
        # Loopback and a loopback/public Host name: a page that rebound its own name to
        # 127.0.0.1 still sends its own name as Host, so it gets no free pass.
        if (
            not request.headers.get("authorization")
            and request.client
            and is_loopback(request.client.host)
            and self.hosts.allows(request.headers.get("host"))
        ):
            return "loopback"
        return self.authorize(request, scope)


def _route_path(request: Request) -> str:
    # The route's template (/v1/hypotheses/{hid}), not the path sent: a label per path a
    # stranger makes up would grow the metric without bound.
    route = request.scope.get("route")
    return getattr(route, "path", None) or "other"
