"""Host names and peers a request may come from: loopback, and the allow-list of ``Host`` names.

Below every shell: the API's ``/metrics`` rule, the console's guard and ``serve``'s refusal to
put the local console on a public address all ask the same questions, answered here once.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["HostAllowList", "LOOPBACK_NAMES", "host_name", "is_loopback"]


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
