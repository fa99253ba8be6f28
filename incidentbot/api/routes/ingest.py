"""``POST /v1/events`` and ``POST /v1/alertmanager``: whole-batch validation, then one ingest."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from incidentbot.api import schemas
from incidentbot.api.deps import AlertAuth, EventsAuth, RuntimeDep
from incidentbot.api.errors import BadRequest, parse_json
from incidentbot.ingest import from_alertmanager, validate_batch
from incidentbot.ingest.schema import needs_cleaning, validate_body_fast
from incidentbot.runtime import Runtime

router = APIRouter(tags=["ingest"])


def _count_rejected(rt: Runtime, source: str, n: int) -> None:
    rt.metrics.events.labels("rejected", source).inc(n)


async def _ingest(rt: Runtime, events: list, source: str):
    """Store a validated batch off the event loop, timed and counted by source."""
    started = time.perf_counter()
    result = await run_in_threadpool(rt.ingest.ingest, events, source=source)
    rt.metrics.ingest_seconds.labels(source).observe(time.perf_counter() - started)
    rt.metrics.events.labels("accepted", source).inc(result.accepted)
    rt.metrics.events.labels("duplicate", source).inc(result.duplicates)
    return result


def _validate_events_body(rt: Runtime, raw: bytes) -> tuple[list, Any]:
    """The full path: every problem of the batch reported, by index and field."""
    cap = rt.settings.max_batch_events
    body = parse_json(raw)
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise BadRequest(422, {"detail": 'expected {"events": [Event, ...]}'})
    items = body["events"]
    if not items:
        raise BadRequest(422, {"detail": f"a batch holds 1 to {cap} events; this one is empty"})
    if len(items) > cap:
        raise BadRequest(413, {"detail": f"a batch holds at most {cap} events; this one has {len(items)}"})
    events, errors = validate_batch(items, clean=needs_cleaning(raw))
    if errors:
        _count_rejected(rt, "api", len(items))
        raise BadRequest(
            422,
            {
                "detail": f"{len({e.index for e in errors})} of {len(items)} events are invalid; nothing was stored",
                "errors": [e.as_dict() for e in errors[:500]],
            },
        )
    return events, body.get("source")


@router.post(
    "/v1/events",
    status_code=202,
    response_model=schemas.IngestReply,
    responses={400: {}, 401: {}, 413: {}, 422: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventBatch"}}},
        }
    },
)
async def post_events(request: Request, rt: RuntimeDep, _auth: EventsAuth):
    raw = await request.body()
    fast = validate_body_fast(raw, max_events=rt.settings.max_batch_events)
    if fast is not None:
        events, source = fast
    else:
        events, source = _validate_events_body(rt, raw)
    source = source if source in ("reporter", "cli", "torchelastic") else "api"
    result = await _ingest(rt, events, source)
    body = {"accepted": result.accepted, "duplicates": result.duplicates}
    if result.time_adjusted:
        # Stored at receive time, with the sent time kept (INCIDENTBOT_MAX_TIME_SKEW).
        body["time_adjusted"] = result.time_adjusted
    return JSONResponse(body, status_code=202)


@router.post(
    "/v1/alertmanager",
    status_code=202,
    response_model=schemas.IngestReply,
    responses={400: {}, 401: {}, 413: {}, 422: {}},
)
async def post_alertmanager(request: Request, rt: RuntimeDep, _auth: AlertAuth):
    body = parse_json(await request.body())
    try:
        converted = from_alertmanager(body)
    except ValueError as exc:
        raise BadRequest(422, {"detail": str(exc)}) from None
    events, errors = validate_batch(list(converted))
    if errors:
        _count_rejected(rt, "alertmanager", len(converted))
        raise BadRequest(
            422,
            {
                "detail": "some alerts cannot be stored; nothing was stored",
                "errors": [e.as_dict() for e in errors[:500]],
            },
        )
    # Alertmanager sends a whole group in one payload and retries it whole on an error, so a
    # payload over the batch cap is stored in chunks of at most the cap, each its own
    # transaction (refusing it would lose the group for good). Every alert has a
    # deterministic event id, so a retry after a failed chunk stores each alert once.
    rt.metrics.events.labels("resolved", "alertmanager").inc(converted.skipped_resolved)
    accepted = duplicates = batches = 0
    size = rt.settings.max_batch_events
    for start in range(0, len(events), size):
        result = await _ingest(rt, events[start : start + size], "alertmanager")
        accepted, duplicates, batches = accepted + result.accepted, duplicates + result.duplicates, batches + 1
    return JSONResponse(
        {
            "accepted": accepted,
            "duplicates": duplicates,
            "resolved_skipped": converted.skipped_resolved,
            "batches": batches,
        },
        status_code=202,
    )
