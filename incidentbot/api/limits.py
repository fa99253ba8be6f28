"""A pure ASGI middleware that refuses bodies over a size limit.

It reads the body itself (stopping as soon as the limit is passed) and replays it to the app, so
a refusal never leaves a half-read request inside a route.
"""

from __future__ import annotations

import json

__all__ = ["BodyLimit"]


class BodyLimit:
    def __init__(self, app, *, max_bytes: int, paths: tuple[str, ...] = ("/v1/",), on_refuse=None):
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths
        self.on_refuse = on_refuse  # called with the path of each refused request (metrics)

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] != "http"
            or scope.get("method") not in ("POST", "PUT", "PATCH")
            or not scope["path"].startswith(self.paths)
        ):
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                return await self._refuse(scope, send)
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                return await self._refuse(scope, send)
            chunks.append(body)
            if not message.get("more_body"):
                break
        whole = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, send):
        if self.on_refuse is not None:
            self.on_refuse(scope["path"])
        body = json.dumps({"detail": f"request body is larger than {self.max_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
