"""FastAPI application: the contract's HTTP API. Routes translate JSON and call services."""

import base64
import json
import logging
import sqlite3
import time
from typing import Annotated, Any

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, InternalError, OperationalError
from starlette.concurrency import run_in_threadpool

from incidentbot.api import schemas
from incidentbot.api.auth import Credentials
from incidentbot.api.limits import BodyLimit
from incidentbot.hosts import HostAllowList
from incidentbot.ingest import from_alertmanager, validate_batch
from incidentbot.ingest.schema import needs_cleaning, validate_body_fast
from incidentbot.runtime import Runtime

__all__ = ["create_app"]

log = logging.getLogger(__name__)


class _BadRequest(Exception):
    def __init__(self, status: int, body: dict):
        self.status, self.body = status, body


def _decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, detail="cursor is not one this service issued") from None


def _encode_cursor(n: int) -> str:
    return base64.urlsafe_b64encode(str(n).encode()).decode().rstrip("=")


def _parse_json(raw: bytes) -> Any:
    if not raw:
        raise _BadRequest(400, {"detail": "empty body: expected a JSON object"})
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise _BadRequest(400, {"detail": "body is not valid UTF-8"}) from None
    except RecursionError:
        raise _BadRequest(400, {"detail": "JSON is nested too deeply"}) from None
    except ValueError as exc:
        raise _BadRequest(400, {"detail": f"body is not valid JSON: {exc}"}) from None


def create_app(rt: Runtime, *, lifespan=None) -> FastAPI:
    settings = rt.settings
    tokens = settings.token_sources()

    app = FastAPI(
        title="incidentbot",
        version="0.1.0",
        description="Failure signatures, root-cause hypotheses and channel votes for GPU training fleets.",
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        on_refuse=lambda path: rt.metrics.refused.labels(
            path if path in ("/v1/events", "/v1/alertmanager") else "other", "too_large"
        ).inc(),
    )

    base_openapi = app.openapi

    def openapi() -> dict:
        # The events route reads its body itself (whole-batch validation), so FastAPI does not
        # know EventBatch/EventIn: add them to the components its requestBody refers to.
        if app.openapi_schema is None:
            spec = base_openapi()
            batch = schemas.EventBatch.model_json_schema(ref_template="#/components/schemas/{model}")
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            components.update(batch.pop("$defs", {}))
            components["EventBatch"] = batch
        return app.openapi_schema

    app.openapi = openapi

    _REASONS = {400: "bad_json", 413: "too_large", 422: "invalid"}

    @app.exception_handler(_BadRequest)
    async def _bad_request(request: Request, exc: _BadRequest):
        rt.metrics.refused.labels(request.url.path, _REASONS.get(exc.status, str(exc.status))).inc()
        return JSONResponse(exc.body, status_code=exc.status)

    async def _database_error(request: Request, exc: Exception):
        # The database refused or dropped the transaction (read-only, disk full, connection lost,
        # server restarting): it was rolled back, so say so, and that a retry is the right move.
        # Errors that say a request or the code is wrong (constraint, data, programming) stay 500s.
        # Ingest uses the driver's own executemany, so driver errors can arrive unwrapped.
        orig = getattr(exc, "orig", None) or exc
        unavailable = (
            isinstance(exc, (OperationalError, InternalError, InterfaceError))
            or getattr(exc, "connection_invalidated", False)
            or isinstance(
                orig,
                (psycopg.OperationalError, psycopg.InternalError, psycopg.InterfaceError, sqlite3.OperationalError),
            )
        )
        if not unavailable:
            raise exc
        reason = " ".join(str(orig or type(exc).__name__).split())[:300]
        log.error("%s %s: database unavailable: %s", request.method, request.url.path, reason)
        return JSONResponse(
            {"detail": f"database unavailable, nothing was stored; retry later ({reason})"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    for db_error in (DBAPIError, psycopg.Error, sqlite3.Error):
        app.add_exception_handler(db_error, _database_error)

    @app.exception_handler(LookupError)
    async def _not_found(request: Request, exc: LookupError):
        # The read model's "no such thing" (services/readmodel.py), said once for every route.
        # KeyError and IndexError are LookupErrors too, but from a bug, not from the request.
        if isinstance(exc, (KeyError, IndexError)):
            raise exc
        return JSONResponse({"detail": str(exc)}, status_code=404)

    credentials = Credentials(tokens, metrics=rt.metrics, hosts=HostAllowList.for_settings(settings))
    app.state.credentials = credentials  # the local console adds its demo feeder's token here

    EventsAuth = Annotated[str, Depends(credentials.require("events"))]
    AlertAuth = Annotated[str, Depends(credentials.require("alertmanager"))]
    ReadAuth = Annotated[str, Depends(credentials.require("read"))]
    MetricsAuth = Annotated[str, Depends(credentials.require_local_or("metrics"))]

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def metrics(_auth: MetricsAuth):
        # Counts and durations only (no failure text, no ids): a loopback scraper needs nothing,
        # anyone else a token of scope `metrics` (or an unrestricted one).
        from fastapi.responses import Response
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(rt.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def count_rejected(source: str, n: int) -> None:
        rt.metrics.events.labels("rejected", source).inc(n)

    async def ingest(events: list, source: str):
        """Store a validated batch off the event loop, timed and counted by source."""
        started = time.perf_counter()
        result = await run_in_threadpool(rt.ingest.ingest, events, source=source)
        rt.metrics.ingest_seconds.labels(source).observe(time.perf_counter() - started)
        rt.metrics.events.labels("accepted", source).inc(result.accepted)
        rt.metrics.events.labels("duplicate", source).inc(result.duplicates)
        return result

    @app.get("/healthz", tags=["ops"])
    async def healthz():
        state = await run_in_threadpool(rt.db.health)
        # The contract: 200 while the database answers. A read-only one answers, so the status
        # stays 200 and the body says that ingest would be refused ("writable": false).
        return JSONResponse(
            {"ok": state != "down", "database": state, "writable": state == "up"},
            status_code=200 if state != "down" else 503,
        )

    def _validate_events_body(raw: bytes) -> tuple[list, Any]:
        """The full path: every problem of the batch reported, by index and field."""
        body = _parse_json(raw)
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            raise _BadRequest(422, {"detail": 'expected {"events": [Event, ...]}'})
        items = body["events"]
        if not items:
            raise _BadRequest(
                422, {"detail": "a batch holds 1 to %d events; this one is empty" % settings.max_batch_events}
            )
        if len(items) > settings.max_batch_events:
            raise _BadRequest(
                413, {"detail": f"a batch holds at most {settings.max_batch_events} events; this one has {len(items)}"}
            )
        events, errors = validate_batch(items, clean=needs_cleaning(raw))
        if errors:
            count_rejected("api", len(items))
            raise _BadRequest(
                422,
                {
                    "detail": f"{len({e.index for e in errors})} of {len(items)} events are invalid; nothing was stored",
                    "errors": [e.as_dict() for e in errors[:500]],
                },
            )
        return events, body.get("source")

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=schemas.IngestReply,
        tags=["ingest"],
        responses={400: {}, 401: {}, 413: {}, 422: {}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventBatch"}}},
            }
        },
    )
    async def post_events(request: Request, _auth: EventsAuth):
        raw = await request.body()
        fast = validate_body_fast(raw, max_events=settings.max_batch_events)
        if fast is not None:
            events, source = fast
        else:
            events, source = _validate_events_body(raw)
        source = source if source in ("reporter", "cli", "torchelastic") else "api"
        result = await ingest(events, source)
        body = {"accepted": result.accepted, "duplicates": result.duplicates}
        if result.time_adjusted:
            # Stored at receive time, with the sent time kept (INCIDENTBOT_MAX_TIME_SKEW).
            body["time_adjusted"] = result.time_adjusted
        return JSONResponse(body, status_code=202)

    @app.post(
        "/v1/alertmanager",
        status_code=202,
        response_model=schemas.IngestReply,
        tags=["ingest"],
        responses={400: {}, 401: {}, 413: {}, 422: {}},
    )
    async def post_alertmanager(request: Request, _auth: AlertAuth):
        body = _parse_json(await request.body())
        try:
            converted = from_alertmanager(body)
        except ValueError as exc:
            raise _BadRequest(422, {"detail": str(exc)}) from None
        events, errors = validate_batch(list(converted))
        if errors:
            count_rejected("alertmanager", len(converted))
            raise _BadRequest(
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
        size = settings.max_batch_events
        for start in range(0, len(events), size):
            result = await ingest(events[start : start + size], "alertmanager")
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

    @app.get("/v1/events", response_model=schemas.EventPage, tags=["read"])
    def get_events(_auth: ReadAuth, limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str | None = None):
        after = _decode_cursor(cursor)
        rows, last = rt.read_model.events_page(limit=limit, after=after)
        return {"events": rows, "next_cursor": _encode_cursor(last) if last is not None else None}

    @app.get("/v1/signatures", response_model=schemas.SignaturePage, tags=["read"])
    def get_signatures(_auth: ReadAuth, limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str | None = None):
        after = _decode_cursor(cursor)
        rows, last = rt.read_model.signatures_page(limit=limit, after=after)
        return {"signatures": rows, "next_cursor": _encode_cursor(last) if last is not None else None}

    @app.get("/v1/signatures/{sid}", tags=["read"])
    def get_signature(sid: str, _auth: ReadAuth):
        return rt.read_model.signature_detail(sid)

    @app.get("/v1/hypotheses", response_model=schemas.HypothesisList, tags=["read"])
    def get_hypotheses(_auth: ReadAuth, status: str | None = None):
        return {"hypotheses": rt.read_model.hypotheses_list(status=status)}

    @app.get("/v1/hypotheses/{hid}", tags=["read"])
    def get_hypothesis(hid: str, _auth: ReadAuth):
        return rt.read_model.hypothesis_detail(hid)

    @app.get("/v1/polls", response_model=schemas.PollList, tags=["read"])
    def get_polls(_auth: ReadAuth, status: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 200):
        return {"polls": rt.read_model.polls(status=status, limit=limit)}

    @app.get("/v1/runbooks", response_model=schemas.RunbookList, tags=["read"])
    def get_runbooks(_auth: ReadAuth):
        return {"runbooks": rt.read_model.runbook_usage()}

    @app.post("/v1/analyze", tags=["analysis"])
    def post_analyze(_auth: ReadAuth):
        from incidentbot.services.hypotheses import AnalysisBusy

        try:
            # The background worker's lease: two analyses never reconcile over each other.
            return rt.hypotheses.analyze_exclusive(worker=f"{rt.worker_id}:api").as_dict()
        except AnalysisBusy as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})

    return app
