"""The call log: every request the local Web API answered (or refused), for tests to assert on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CallLog", "CallRecord"]


@dataclass
class CallRecord:
    """One request the local Web API answered (or refused)."""

    method: str  # e.g. "chat.update"; response_url posts are recorded as "response_url"
    params: dict[str, Any]
    status: int  # HTTP status returned
    ok: bool
    error: str | None = None
    at: float = 0.0  # wall clock
    content_type: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "params": self.params,
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            "at": self.at,
            "content_type": self.content_type,
        }


class CallLog:
    """``on_change``: called (with the lock held) after each record, so a waiter on the
    workspace's version (``wait_for(lambda: ws.call_count(...))``) wakes up."""

    def __init__(self, *, lock: threading.RLock | None = None, on_change: Callable[[], None] = lambda: None):
        self._lock = lock or threading.RLock()
        self._on_change = on_change
        self._calls: list[CallRecord] = []

    def record(self, record: CallRecord) -> None:
        with self._lock:
            self._calls.append(record)
            self._on_change()

    def calls(self, method: str | None = None, **params: Any) -> list[CallRecord]:
        """Recorded calls, optionally filtered by method and exact param values
        (e.g. `calls("chat.update", channel=cid, ts=ts)`)."""
        with self._lock:
            out = []
            for c in self._calls:
                if method is not None and c.method != method:
                    continue
                if any(str(c.params.get(k)) != str(v) for k, v in params.items()):
                    continue
                out.append(c)
            return out

    def count(self, method: str | None = None, **params: Any) -> int:
        return len(self.calls(method, **params))
