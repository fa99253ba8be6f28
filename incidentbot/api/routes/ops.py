"""``/healthz`` and ``/metrics``: for load balancers and scrapers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from incidentbot.api.deps import MetricsAuth, RuntimeDep

router = APIRouter(tags=["ops"])


@router.get("/metrics", include_in_schema=False)
def metrics(rt: RuntimeDep, _auth: MetricsAuth):
    # Counts and durations only (no failure text, no ids): a loopback scraper needs nothing,
    # anyone else a token of scope `metrics` (or an unrestricted one).
    return Response(rt.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
async def healthz(rt: RuntimeDep):
    state = await run_in_threadpool(rt.db.health)
    # The contract: 200 while the database answers. A read-only one answers, so the status
    # stays 200 and the body says that ingest would be refused ("writable": false).
    return JSONResponse(
        {"ok": state != "down", "database": state, "writable": state == "up"},
        status_code=200 if state != "down" else 503,
    )
