"""torchelastic error files → events (pure: the file's bytes and path in, an event dict out).

``torch.distributed.elastic.multiprocessing.errors.record`` writes each failed worker's error to
``TORCHELASTIC_ERROR_FILE``; the elastic agent points that at
``<log_dir>/<run_id>_<random>/attempt_<N>/<local_rank>/error.json`` (seen in a real
``torchrun --log-dir L --rdzv-id job42`` run of torch 2.13: ``L/job42_iwzyy02b/attempt_1/1/error.json``;
without ``--rdzv-id`` the run id is ``none``). The file holds
``{"message": {"message": "RuntimeError: …", "extraInfo": {"py_callstack": "Traceback …", "timestamp": "1796168818"}}}``;
the agent's own copy (its ``TORCHELASTIC_ERROR_FILE``) adds ``"errorCode"``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

__all__ = ["from_torchelastic", "ErrorFilePlace", "place_from_path"]

_ATTEMPT = re.compile(r"^attempt_(\d{1,6})$")
_RUN_DIR = re.compile(r"^(.+)_[a-z0-9_]{8}$")
# A rank the message itself names ("[Rank 3] Watchdog caught …", "rank 3: …") is the global rank.
_MESSAGE_RANK = re.compile(r"\b[Rr]ank[ :=]{1,3}(\d{1,9})\b")


@dataclass(frozen=True, slots=True)
class ErrorFilePlace:
    """What torchelastic's directory layout says about an error file."""

    attempt: int | None = None
    local_rank: int | None = None
    run_id: str | None = None


def place_from_path(path: str | PurePath) -> ErrorFilePlace:
    parts = PurePath(path).parts
    for i in range(len(parts) - 2, 0, -1):
        m = _ATTEMPT.match(parts[i - 1]) if i >= 1 else None
        if m and parts[i].isdigit() and len(parts[i]) < 9:
            run = _RUN_DIR.match(parts[i - 2]) if i >= 2 else None
            return ErrorFilePlace(attempt=int(m[1]), local_rank=int(parts[i]), run_id=run[1] if run else None)
    return ErrorFilePlace()


def from_torchelastic(
    data: Any,
    *,
    job_id: str | None = None,
    rank: int | None = None,
    host: str | None = None,
    path: str | PurePath | None = None,
) -> dict:
    """One error file → one event. ``data`` is the file's text or bytes (or its parsed JSON).

    Rank: the one the message names, else ``rank``, else the local rank of the path. Job: ``job_id``,
    else the run id of the path, else ``"unknown"``. The event id is a hash of the file's content,
    its place (run, attempt, local rank) and host, so ingesting it again stores nothing new.
    Raises ValueError with a reason for anything that is not an error file."""
    raw = (
        data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data if isinstance(data, bytes) else None
    )
    if raw is not None:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"not a torchelastic error file: not JSON ({str(exc)[:80]})") from None
    else:
        raw = json.dumps(data, sort_keys=True).encode()
    if not isinstance(data, dict) or "message" not in data:
        raise ValueError("not a torchelastic error file: expected an object with a 'message' field")
    place = place_from_path(path) if path is not None else ErrorFilePlace()
    msg = data["message"]
    extra: dict = {}
    if isinstance(msg, dict):
        info = msg.get("extraInfo")
        extra = info if isinstance(info, dict) else {}
        summary = str(msg.get("message", ""))
        text = summary
        stack = extra.get("py_callstack")
        if isinstance(stack, str) and stack.strip():
            text = stack.rstrip() + ("\n" + summary if summary and summary not in stack else "")
    else:
        summary = text = str(msg)
    named = _MESSAGE_RANK.search(summary[:2000])
    event_rank = int(named[1]) if named else rank if rank is not None else place.local_rank
    attributes: dict[str, Any] = {"source": "torchelastic"}
    for key, value in (
        ("attempt", place.attempt),
        ("run_id", place.run_id),
        ("local_rank", place.local_rank),
        ("error_code", data.get("errorCode")),
        ("file", str(path) if path is not None else None),
    ):
        if value is not None:
            attributes[key] = value
    key = hashlib.sha256(
        b"%s|%s|%s|%s|%s"
        % (
            str(place.run_id).encode(),
            str(place.attempt).encode(),
            str(place.local_rank).encode(),
            str(host).encode(),
            raw,
        )
    ).hexdigest()
    event: dict[str, Any] = {
        "event_id": f"te:{key[:40]}",
        "job_id": job_id or place.run_id or "unknown",
        "message": text or "torchelastic error file with an empty message",
        "kind": "crash",
        "attributes": attributes,
    }
    ts = extra.get("timestamp")
    if ts is not None and str(ts).isdigit() and len(str(ts)) <= 11:
        event["time"] = datetime.fromtimestamp(int(ts), tz=UTC).isoformat()
    if event_rank is not None:
        event["rank"] = event_rank
    if host:
        event["host"] = host
    return event
