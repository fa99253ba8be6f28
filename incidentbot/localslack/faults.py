"""The fault plan: failures a test injects into the local Web API (429 with Retry-After, 5xx).

A fault answers the next N calls of a method (``fail_next``) or every call for a while
(``fail_for``); ``method=None`` matches every method, ``"response_url"`` included.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Fault", "FaultPlan"]


@dataclass
class Fault:
    """One injected failure. `method=None` matches every method (incl. "response_url")."""

    method: str | None
    status: int
    retry_after: int | None = None
    times: int = 1  # remaining uses for fail_next faults
    until: float | None = None  # monotonic deadline for fail_for faults

    def matches(self, method: str) -> bool:
        return self.method is None or self.method == method


class FaultPlan:
    """The faults still to come. ``clock``: monotonic seconds (the workspace's, read at each call,
    so a test that moves the workspace's clock moves this one)."""

    def __init__(self, *, clock: Callable[[], float], lock: threading.RLock | None = None):
        self._clock = clock
        self._lock = lock or threading.RLock()
        self._faults: list[Fault] = []

    def fail_next(self, method: str | None, *, status: int, retry_after: int | None = None, times: int = 1) -> None:
        """The next `times` calls of `method` (None = any) answer HTTP `status`.

        429 answers carry `Retry-After` (default 1) and `{"ok": false, "error": "ratelimited"}`.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._faults.append(Fault(method=method, status=status, retry_after=retry_after, times=times))

    def fail_for(
        self, seconds: float, status: int, *, method: str | None = None, retry_after: int | None = None
    ) -> None:
        """Every call of `method` (None = any) answers `status` for the next `seconds`."""
        if status == 429 and retry_after is None:
            retry_after = max(1, int(round(seconds)))
        with self._lock:
            self._faults.append(
                Fault(method=method, status=status, retry_after=retry_after, times=0, until=self._clock() + seconds)
            )

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str) -> Fault | None:
        """Consume and return the fault that applies to this call, if any (used by the API)."""
        with self._lock:
            now = self._clock()
            self._faults = [f for f in self._faults if (f.until is None and f.times > 0) or (f.until and f.until > now)]
            for f in self._faults:
                if f.matches(method):
                    if f.until is None:
                        f.times -= 1
                    return copy.copy(f)
            return None
