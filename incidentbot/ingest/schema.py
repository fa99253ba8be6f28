"""The event schema of the contract, and whole-batch validation with an error per bad event."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, field_validator

__all__ = [
    "EventIn",
    "BatchError",
    "validate_batch",
    "validate_body_fast",
    "needs_cleaning",
    "clean_text",
    "MAX_MESSAGE_BYTES",
]

MAX_MESSAGE_BYTES = 64 * 1024
MAX_INT = 2**63 - 1
MAX_JSON_DEPTH = 32
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)

_KNOWN = {
    "event_id",
    "job_id",
    "message",
    "time",
    "cluster",
    "host",
    "gpu",
    "rank",
    "step",
    "code_version",
    "versions",
    "kind",
    "attributes",
    "run",
    "attempt",
}


def clean_text(s: str) -> str:
    """Make text storable everywhere: NUL → U+2400 (PostgreSQL text cannot hold NUL), lone
    surrogates → U+FFFD. Valid text comes back unchanged."""
    if "\x00" in s:
        s = s.replace("\x00", "\u2400")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return s


def _clean_json(value: Any, depth: int = 0) -> Any:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v, depth + 1) for v in value]
    return value


class EventIn(BaseModel):
    """One failure event, as a training job, Alertmanager or the CLI sends it."""

    model_config = ConfigDict(extra="forbid", str_max_length=MAX_MESSAGE_BYTES)

    event_id: str | None = Field(default=None, min_length=1, max_length=128)
    job_id: str = Field(min_length=1, max_length=256)
    message: str = Field(min_length=1)
    time: datetime | None = None
    cluster: str | None = Field(default=None, max_length=256)
    host: str | None = Field(default=None, max_length=256)
    gpu: str | None = Field(default=None, max_length=256)
    rank: int | None = Field(default=None, ge=0, le=MAX_INT)
    step: int | None = Field(default=None, ge=0, le=MAX_INT)
    code_version: str | None = Field(default=None, max_length=256)
    versions: dict[
        Annotated[str, StringConstraints(max_length=64)], Annotated[str, StringConstraints(max_length=128)]
    ] = Field(default_factory=dict, max_length=64)
    kind: str | None = Field(default=None, max_length=64)
    attributes: dict[str, Any] = Field(default_factory=dict)
    # Run lineage: the run a job id belongs to (a torchelastic run id, the SLURM job of a requeued
    # array) and which restart attempt within it. Absent: read from attributes run_id / attempt /
    # restart_count (services/ingest.py run_lineage).
    run: str | None = Field(default=None, min_length=1, max_length=256)
    attempt: int | None = Field(default=None, ge=0, le=MAX_INT)

    @field_validator("message")
    @classmethod
    def _message(cls, v: str) -> str:
        if len(v.encode("utf-8")) > MAX_MESSAGE_BYTES:
            raise ValueError(f"message is longer than {MAX_MESSAGE_BYTES} bytes of UTF-8")
        return v

    @field_validator("time")
    @classmethod
    def _time(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            v = v.replace(tzinfo=UTC)  # RFC 3339 requires an offset; assume UTC when a job omits it
        # A failure time outside this range is a broken clock or a typo; SQLite also cannot read
        # back years before 1000 (its text format is not zero-padded), which made one such event
        # break every later GET /v1/events.
        if v is not None and not (MIN_TIME <= v <= MAX_TIME):
            raise ValueError("time must be between 1970-01-01 and 2200-01-01")
        return v


@dataclass(frozen=True, slots=True)
class BatchError:
    index: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"index": self.index, "field": self.field, "message": self.message}


def needs_cleaning(raw: bytes) -> bool:
    """Whether a JSON body can hold text that must be cleaned: NUL and lone surrogates can only
    arrive as ``\\u0000`` / ``\\udXXX`` escapes, so most bodies skip the per-string pass."""
    return b"\\u0000" in raw or _SURROGATE_ESCAPE.search(raw) is not None


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_ADAPTER = TypeAdapter(list[EventIn])


def _prepare(item: dict, clean: bool) -> dict:
    """Unknown top-level fields move under ``attributes`` (kept, never dropped); text is made
    storable; nesting is bounded."""
    if clean:
        item = _clean_json(item)
    if not _KNOWN.issuperset(item):
        item = dict(item)
        attrs = item.get("attributes")
        attrs = dict(attrs) if isinstance(attrs, dict) else ({} if attrs is None else {"attributes": attrs})
        for key in [k for k in item if k not in _KNOWN]:
            attrs.setdefault(str(key), item.pop(key))
        item["attributes"] = attrs
    attrs = item.get("attributes")
    if attrs and not clean:
        _check_depth(attrs)
    return item


def _check_depth(value: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        for v in value.values():
            if isinstance(v, (dict, list)):
                _check_depth(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                _check_depth(v, depth + 1)


def validate_batch(items: list[Any], *, clean: bool = True) -> tuple[list[EventIn], list[BatchError]]:
    """Validate every item; the batch is good only when the error list is empty.

    ``clean=False`` skips the text-cleaning pass (see :func:`needs_cleaning`)."""
    errors: list[BatchError] = []
    prepared: list[Any] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(BatchError(i, "", "each event must be a JSON object"))
            prepared.append(None)
            continue
        try:
            prepared.append(_prepare(item, clean))
        except (ValueError, RecursionError) as exc:
            errors.append(BatchError(i, "attributes", str(exc)[:200]))
            prepared.append(None)
    if errors:
        # Report every bad event, including the ones that fail the schema.
        for i, item in enumerate(prepared):
            if item is not None:
                try:
                    EventIn.model_validate(item)
                except ValidationError as exc:
                    errors.extend(_errors(exc, offset=i))
        return [], sorted(errors, key=lambda e: e.index)
    try:
        return _ADAPTER.validate_python(prepared), []
    except ValidationError as exc:
        return [], _errors(exc)


class _Body(BaseModel):
    """``{"events": [...]}`` as the events route takes it; other top-level keys are ignored."""

    events: list[EventIn]
    source: Any = None


_BODY = TypeAdapter(_Body)


def validate_body_fast(raw: bytes, *, max_events: int) -> tuple[list[EventIn], Any] | None:
    """The common case in one pass of pydantic's JSON parser (about twice as fast as ``json.loads``
    then validating): a body whose events all validate as sent. Returns (events, source), or None
    for anything else (unknown fields to move under ``attributes``, text to clean, a bad event, a
    batch too small or large) so the caller takes the full path, which gives the exact errors."""
    if needs_cleaning(raw):
        return None
    try:
        body = _BODY.validate_json(raw)
    except (ValidationError, ValueError):
        return None
    if not 1 <= len(body.events) <= max_events:
        return None
    try:
        for ev in body.events:
            if ev.attributes:
                _check_depth(ev.attributes)
    except (ValueError, RecursionError):
        return None
    return body.events, body.source


def _errors(exc: ValidationError, *, offset: int | None = None) -> list[BatchError]:
    out = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        index = offset if offset is not None else int(loc.pop(0))
        out.append(BatchError(index, ".".join(str(p) for p in loc), err["msg"]))
    return out
