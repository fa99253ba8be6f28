"""Run the local Slack app with uvicorn in a background thread (tests, demos, embedding)."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from typing import Any

import uvicorn

from .api import create_app
from .state import Workspace


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, started: threading.Event) -> None:
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._started_event.set()


@dataclass
class RunningServer:
    """A running local Slack. `url` has no trailing slash; `api_url` is for `WebClient(base_url=...)`."""

    workspace: Workspace
    host: str
    port: int
    _server: _Server
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, token: str) -> str:
        return f"{self.url}/response/{token}"

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def run_in_thread(
    workspace: Workspace | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    app: Any = None,
    startup_timeout: float = 10.0,
) -> RunningServer:
    """Start uvicorn serving `create_app(workspace)` (or `app`) on a free port (`port=0`) and
    return once it accepts connections."""
    workspace = workspace or Workspace()
    app = app or create_app(workspace)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    started = threading.Event()
    server = _Server(config, started)

    def run() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, name=f"localslack:{actual_port}", daemon=True)
    thread.start()
    if not started.wait(startup_timeout):
        server.should_exit = True
        raise RuntimeError("localslack server did not start")
    return RunningServer(workspace=workspace, host=host, port=actual_port, _server=server, _thread=thread)
