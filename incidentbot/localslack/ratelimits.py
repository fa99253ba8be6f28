"""Slack-like natural rate limits for the local Web API (off until enabled): a token bucket per
method and key (the channel, for chat.postMessage)."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["DEFAULT_LIMITS", "RateLimits"]

# Slack's "about one message per second per channel, short bursts allowed", and chat.update's
# tier (50 a minute): {method: (burst, per_second)}.
DEFAULT_LIMITS: dict[str, tuple[float, float]] = {"chat.postMessage": (3.0, 1.0), "chat.update": (50.0, 50.0 / 60.0)}


class RateLimits:
    """``clock``: monotonic seconds (the workspace's, read at each call)."""

    def __init__(self, *, clock: Callable[[], float], lock: threading.RLock | None = None):
        self._clock = clock
        self._lock = lock or threading.RLock()
        self._limits: dict[str, tuple[float, float]] = {}
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (method, key) -> (tokens, last)

    def enable(self, limits: dict[str, tuple[float, float]] | None = None) -> None:
        """Enforce `{method: (burst, per_second)}` (None: DEFAULT_LIMITS; `{}`: none), buckets full."""
        with self._lock:
            self._limits = dict(DEFAULT_LIMITS if limits is None else limits)
            self._buckets.clear()

    def check(self, method: str, key: str = "") -> int | None:
        """Take one token for (method, key); return Retry-After seconds when over the limit."""
        with self._lock:
            limit = self._limits.get(method)
            if limit is None:
                return None
            burst, rate = limit
            now = self._clock()
            tokens, last = self._buckets.get((method, key), (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[(method, key)] = (tokens, now)
                return max(1, int(-(-(1.0 - tokens) // rate)))
            self._buckets[(method, key)] = (tokens - 1.0, now)
            return None
