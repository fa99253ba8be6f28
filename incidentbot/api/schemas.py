"""Response shapes of the HTTP API and the read queries behind them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import col

from incidentbot import signatures as sigengine
from incidentbot.ids import IdError, parse_id
from incidentbot.ingest.schema import EventIn
from incidentbot.models import Event, Hypothesis, HypothesisLog, Signature
from incidentbot.services.signatures import canonical_map


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


def _id(text: str, prefix: str) -> int:
    try:
        return parse_id(text, expect=prefix)[1]
    except IdError as exc:
        raise HTTPException(404, detail=str(exc)) from None


def events_page(rt, *, limit: int, after: int | None):
    with rt.db.read() as session:
        q = select(Event).order_by(col(Event.id)).limit(limit + 1)
        if after is not None:
            q = q.where(col(Event.id) > after)
        rows = list(session.scalars(q))
        cmap = canonical_map(session)
    more = len(rows) > limit
    rows = rows[:limit]
    out = [
        dict(
            event_id=e.event_id,
            job_id=e.job_id,
            signature_id=f"S-{cmap.get(e.signature_id, e.signature_id)}",
            hypothesis_id=f"H-{e.hypothesis_id}" if e.hypothesis_id else None,
            message=e.message,
            time=e.time,
            received_at=e.received_at,
            cluster=e.cluster,
            host=e.host,
            gpu=e.gpu,
            rank=e.rank,
            step=e.step,
            code_version=e.code_version,
            versions=e.versions or {},
            kind=e.kind,
            attributes=e.attributes or {},
            source=e.source,
            run=e.run,
            attempt=e.attempt,
        )
        for e in rows
    ]
    return out, (rows[-1].id if more and rows else None)


def signature_record(rt, session, sig: Signature, merged_from: Sequence[Signature] = ()) -> dict:
    members = [sig, *merged_from]
    return dict(
        id=f"S-{sig.id}",
        title=sig.title,
        category=sig.category,
        cause_class=sig.cause_class,
        template=sig.template,
        count=sum(s.count for s in members),
        first_seen=min(s.first_seen for s in members),
        last_seen=max(s.last_seen for s in members),
        runbook_ids=[c.runbook.id for c in rt.runbooks.for_signature(session, sig)],
        job_count=sig.job_count,
        host_count=sig.host_count,
        rank_count=sig.rank_count,
        parser=sig.parser,
        rules_version=sig.rules_version,
        details=sig.details or {},
        merged_from=[f"S-{s.id}" for s in merged_from],
        muted_until=sig.muted_until,
    )


def explanation_dict(exp: sigengine.Explanation) -> dict:
    return {
        "parser": exp.parser,
        "reasons": list(exp.reasons),
        "fingerprint": exp.fingerprint.key,
        "masked": [{"kind": k, "value": v} for k, v in exp.masked[:200]],
    }


def signatures_page(rt, *, limit: int, after: int | None):
    with rt.db.read() as session:
        rows = rt.signatures.page(session, limit=limit + 1, after=after)
        more = len(rows) > limit
        rows = rows[:limit]
        cmap = canonical_map(session)
        merged: dict[int, list[Signature]] = {}
        if cmap:
            for s in session.scalars(select(Signature).where(col(Signature.id).in_(list(cmap)))):
                merged.setdefault(cmap[s.id], []).append(s)
        out = [signature_record(rt, session, s, merged.get(s.id, [])) for s in rows]
    return out, (rows[-1].id if more and rows else None)


def signature_detail(rt, text: str) -> dict:
    sid = _id(text, "S")
    with rt.db.read() as session:
        sig = session.get(Signature, sid)
        if sig is None:
            raise HTTPException(404, detail=f"S-{sid} does not exist")
        cmap = canonical_map(session)
        merged = [s for s in rt.signatures.members(session, sid) if s.id != sid]
        record = signature_record(rt, session, sig, merged)
        record["merged_into"] = f"S-{cmap[sid]}" if sid in cmap else None
        record["example"] = sig.example
        record["explain"] = explanation_dict(sigengine.explain(sig.example)) if sig.example else None
    return record


def hypothesis_record(rt, session, h: Hypothesis) -> dict:
    sids = rt.hypotheses.signature_ids(session, h.id)
    sigs = list(session.scalars(select(Signature).where(col(Signature.id).in_(sids)))) if sids else []
    return dict(
        id=f"H-{h.id}",
        title=h.title,
        status=h.status,
        cause_class=h.cause_class,
        kind=h.kind,
        signature_ids=[f"S-{s}" for s in sids],
        scope=h.scope or {},
        confidence=h.confidence,
        evidence=list(h.evidence or []),
        runbook_ids=[c.runbook.id for c in rt.runbooks.for_hypothesis(session, h.id, sigs)],
        event_count=h.event_count,
        created_at=h.created_at,
        last_activity_at=h.last_activity_at,
        resolution=h.resolution or {},
    )


def hypotheses_list(rt, *, status: str | None, limit: int = 500) -> list[dict]:
    with rt.db.read() as session:
        hs = rt.hypotheses.list(session, statuses=tuple(status.split(",")) if status else None, limit=limit)
        return [hypothesis_record(rt, session, h) for h in hs]


def hypothesis_detail(rt, text: str) -> dict:
    hid = _id(text, "H")
    with rt.db.read() as session:
        h = session.get(Hypothesis, hid)
        if h is None:
            raise HTTPException(404, detail=f"H-{hid} does not exist")
        record = hypothesis_record(rt, session, h)
        record["timeline"] = [
            dict(at=entry.at, kind=entry.kind, text=entry.text, actor=entry.actor)
            for entry in session.scalars(
                select(HypothesisLog).where(col(HypothesisLog.hypothesis_id) == hid).order_by(col(HypothesisLog.id))
            )
        ]
        record["merged_into"] = f"H-{h.merged_into}" if h.merged_into else None
    return record
