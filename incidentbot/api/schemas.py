"""Response shapes of the HTTP API (the queries behind them are services.readmodel's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from incidentbot.ingest.schema import EventIn


class EventBatch(BaseModel):
    events: list[EventIn] = Field(min_length=1, max_length=5000)


class IngestReply(BaseModel):
    accepted: int
    duplicates: int


class EventOut(BaseModel):
    event_id: str
    job_id: str
    signature_id: str
    hypothesis_id: str | None
    message: str
    time: datetime
    received_at: datetime
    cluster: str | None = None
    host: str | None = None
    gpu: str | None = None
    rank: int | None = None
    step: int | None = None
    code_version: str | None = None
    versions: dict[str, str] = {}
    kind: str | None = None
    attributes: dict[str, Any] = {}
    source: str
    run: str | None = None
    attempt: int | None = None


class EventPage(BaseModel):
    events: list[EventOut]
    next_cursor: str | None


class SignatureOut(BaseModel):
    id: str
    title: str
    category: str
    cause_class: str
    template: str
    count: int
    first_seen: datetime
    last_seen: datetime
    runbook_ids: list[str]
    job_count: int
    host_count: int
    rank_count: int
    parser: str
    rules_version: str
    details: dict[str, Any]
    merged_from: list[str] = []
    muted_until: datetime | None = None


class SignaturePage(BaseModel):
    signatures: list[SignatureOut]
    next_cursor: str | None


class HypothesisOut(BaseModel):
    id: str
    title: str
    status: str
    cause_class: str
    kind: str
    signature_ids: list[str]
    scope: dict[str, Any]
    confidence: float
    evidence: list[str]
    runbook_ids: list[str]
    event_count: int
    created_at: datetime
    last_activity_at: datetime
    resolution: dict[str, Any] = {}


class HypothesisList(BaseModel):
    hypotheses: list[HypothesisOut]


class PollOptionOut(BaseModel):
    id: int
    label: str
    hypothesis_id: str | None
    votes: int


class PollOut(BaseModel):
    id: str
    status: str
    question: str
    hypothesis_ids: list[str]
    options: list[PollOptionOut]
    anonymous: bool
    creator: str
    closes_at: datetime | None = None
    closed_at: datetime | None = None
    created_at: datetime
    outcome: dict[str, Any] | None = None


class PollList(BaseModel):
    polls: list[PollOut]


class RunbookUsage(BaseModel):
    id: str
    title: str
    severity: str
    owner: str
    last_reviewed: str
    url: str | None
    incidents: list[str]  # hypotheses it served (linked by hand, or their top automatic match)
    resolved: int
    mean_hours_to_resolution: float | None


class RunbookList(BaseModel):
    runbooks: list[RunbookUsage]
