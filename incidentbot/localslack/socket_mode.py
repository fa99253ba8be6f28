"""Socket Mode, as Slack runs it, for the local stand-in.

The app calls ``apps.connections.open`` with its app-level token (``xapp-…``) and gets a one-use
WebSocket URL; on that socket Slack says ``hello``, then sends *envelopes* (``slash_commands``,
``interactive``, ``events_api``), each of which the app must acknowledge with its
``envelope_id`` (and, for commands and view submissions, a response ``payload``) within 3 seconds.

:class:`SocketModeHub` keeps the open sockets. The simulator (another thread) hands it an
envelope with :meth:`SocketModeHub.deliver` and gets the app's acknowledgement back, so the same
tests can drive the bot over HTTP or over Socket Mode.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["SocketModeHub", "ACK_TIMEOUT_SECONDS"]

# Slack waits this long for an envelope's acknowledgement before it counts as failed.
ACK_TIMEOUT_SECONDS = 3.0


@dataclass
class _Session:
    loop: asyncio.AbstractEventLoop
    outbox: asyncio.Queue[dict | None]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])


class SocketModeHub:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._tickets: set[str] = set()
        self._sessions: list[_Session] = []
        self._pending: dict[str, tuple[threading.Event, list]] = {}
        self.connections_opened = 0

    # ------------------------------------------------------------------ apps.connections.open
    def new_ticket(self) -> str:
        ticket = secrets.token_urlsafe(12)
        with self._lock:
            self._tickets.add(ticket)
        return ticket

    def _take_ticket(self, ticket: str) -> bool:
        with self._lock:
            if ticket in self._tickets:
                self._tickets.discard(ticket)
                return True
            return False

    # ------------------------------------------------------------------ the WebSocket endpoint
    async def serve(self, websocket: WebSocket) -> None:
        if not self._take_ticket(websocket.query_params.get("ticket", "")):
            # Slack refuses a URL that was not issued, or was used already.
            await websocket.close(code=1008)
            return
        await websocket.accept()
        session = _Session(loop=asyncio.get_running_loop(), outbox=asyncio.Queue())
        await websocket.send_text(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self._sessions) + 1,
                    "debug_info": {"host": "localslack", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": "A0LOCAL01"},
                }
            )
        )
        with self._lock:
            self._sessions.append(session)
            self.connections_opened += 1
            self._lock.notify_all()
        sender = asyncio.create_task(self._send_loop(websocket, session))
        try:
            while True:
                raw = await websocket.receive_text()
                self._acknowledged(raw)
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()
            with self._lock:
                if session in self._sessions:
                    self._sessions.remove(session)
                self._lock.notify_all()

    async def _send_loop(self, websocket: WebSocket, session: _Session) -> None:
        while True:
            envelope = await session.outbox.get()
            if envelope is None:
                await websocket.close()
                return
            await websocket.send_text(json.dumps(envelope))

    def _acknowledged(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict) or "envelope_id" not in message:
            return
        with self._lock:
            waiter = self._pending.get(str(message["envelope_id"]))
        if waiter is not None:
            waiter[1].append(message)
            waiter[0].set()

    # ------------------------------------------------------------------ the simulator's side
    def wait_connected(self, timeout: float = 10.0, *, opened_at_least: int = 1) -> bool:
        """Wait until a socket is open (and at least ``opened_at_least`` were opened in all)."""
        with self._lock:
            return self._lock.wait_for(
                lambda: bool(self._sessions) and self.connections_opened >= opened_at_least, timeout
            )

    @property
    def connected(self) -> int:
        with self._lock:
            return len(self._sessions)

    def deliver(
        self,
        envelope_type: str,
        payload: dict,
        *,
        timeout: float = ACK_TIMEOUT_SECONDS,
        accepts_response_payload: bool = True,
    ) -> dict:
        """Send one envelope on an open socket; return the app's acknowledgement (a dict with
        ``envelope_id`` and maybe ``payload``). Raises TimeoutError when none comes in time (Slack
        would show the user an error), ConnectionError when no app is connected."""
        if not self.wait_connected(timeout):
            raise ConnectionError("no Socket Mode connection is open")
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        done = threading.Event()
        got: list = []
        with self._lock:
            self._pending[envelope_id] = (done, got)
            session = self._sessions[0]
        try:
            session.loop.call_soon_threadsafe(session.outbox.put_nowait, envelope)
            if not done.wait(timeout):
                raise TimeoutError(f"the app did not acknowledge envelope {envelope_id} within {timeout:g} s")
            return got[0]
        finally:
            with self._lock:
                self._pending.pop(envelope_id, None)

    def refresh(self) -> None:
        """Close every socket, as Slack does every few hours (the app must reconnect)."""
        with self._lock:
            sessions = list(self._sessions)
        for s in sessions:
            s.loop.call_soon_threadsafe(
                s.outbox.put_nowait,
                {"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "localslack"}},
            )
            s.loop.call_soon_threadsafe(s.outbox.put_nowait, None)
