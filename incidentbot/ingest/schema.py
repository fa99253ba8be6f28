"""The event schema of the contract, and whole-batch validation with an error per bad event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["EventIn", "BatchError", "validate_batch", "clean_text", "MAX_MESSAGE_BYTES"]

MAX_MESSAGE_BYTES = 64 * 1024
MAX_INT = 2**63 - 1
MAX_JSON_DEPTH = 32

_KNOWN = {"event_id", "job_id", "message", "time", "cluster", "host", "gpu", "rank", "step", "code_version",
          "versions", "kind", "attributes"}


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
    versions: dict[str, str] = Field(default_factory=dict, max_length=64)
    kind: str | None = Field(default=None, max_length=64)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _keep_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = _clean_json(data)
        # Unknown top-level fields are kept under `attributes`, never dropped.
        if isinstance(data, dict) and not _KNOWN.issuperset(data):
            data = dict(data)
            attrs = data.get("attributes")
            attrs = dict(attrs) if isinstance(attrs, dict) else ({} if attrs is None else {"attributes": attrs})
            for key in [k for k in data if k not in _KNOWN]:
                attrs.setdefault(str(key), data.pop(key))
            data["attributes"] = attrs
        return data

    @field_validator("message")
    @classmethod
    def _message(cls, v: str) -> str:
        if len(v.encode("utf-8")) > MAX_MESSAGE_BYTES:
            raise ValueError(f"message is longer than {MAX_MESSAGE_BYTES} bytes of UTF-8")
        return v

    @field_validator("versions")
    @classmethod
    def _versions(cls, v: dict[str, str]) -> dict[str, str]:
        out = {}
        for k, val in v.items():
            if len(k) > 64 or len(val) > 128:
                raise ValueError("version names are at most 64 characters and values 128")
            out[k] = val
        return out

    @field_validator("time")
    @classmethod
    def _time(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            v = v.replace(tzinfo=timezone.utc)  # RFC 3339 requires an offset; assume UTC when a job omits it
        return v


@dataclass(frozen=True, slots=True)
class BatchError:
    index: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"index": self.index, "field": self.field, "message": self.message}


def validate_batch(items: list[Any]) -> tuple[list[EventIn], list[BatchError]]:
    """Validate every item; the batch is good only when the error list is empty."""
    events: list[EventIn] = []
    errors: list[BatchError] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(BatchError(i, "", "each event must be a JSON object"))
            continue
        try:
            events.append(EventIn.model_validate(item))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                field = ".".join(str(p) for p in err["loc"]) or ""
                errors.append(BatchError(i, field, err["msg"]))
        except (ValueError, RecursionError) as exc:
            errors.append(BatchError(i, "", str(exc)[:200]))
    return events, errors
