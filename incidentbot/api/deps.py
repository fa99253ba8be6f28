"""What the routes take as ``Annotated`` dependencies: the runtime and the bearer-token checks.

The app built by :func:`incidentbot.api.create_app` holds both in ``app.state`` (``runtime``,
``credentials``), so the routes are module-level functions that name what they need
(``rt: RuntimeDep``, ``_auth: ReadAuth``) instead of closures over ``create_app``'s locals.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from incidentbot.api.auth import SCOPES, Credentials
from incidentbot.runtime import Runtime

# The dependencies are `async` only so that FastAPI calls them on the event loop: they do no I/O,
# and a sync dependency would cost every request a trip through the thread pool.

__all__ = ["AlertAuth", "EventsAuth", "MetricsAuth", "ReadAuth", "RuntimeDep", "get_credentials", "get_runtime"]


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def get_credentials(request: Request) -> Credentials:
    return request.app.state.credentials


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CredentialsDep = Annotated[Credentials, Depends(get_credentials)]


class _Scope:
    """A dependency: the request's bearer token is allowed ``scope`` (401/403 otherwise); its
    value is the token's scope, or "any". ``local``: a loopback peer needs no token."""

    def __init__(self, scope: str, *, local: bool = False):
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        self.scope, self.local = scope, local

    async def __call__(self, request: Request, credentials: CredentialsDep) -> str:
        if self.local:
            return credentials.authorize_local_or(request, self.scope)
        return credentials.authorize(request, self.scope)


EventsAuth = Annotated[str, Depends(_Scope("events"))]
AlertAuth = Annotated[str, Depends(_Scope("alertmanager"))]
ReadAuth = Annotated[str, Depends(_Scope("read"))]
MetricsAuth = Annotated[str, Depends(_Scope("metrics", local=True))]
