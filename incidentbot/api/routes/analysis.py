"""``POST /v1/analyze``: run the analysis now, under the background worker's lease."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from incidentbot.api.deps import ReadAuth, RuntimeDep
from incidentbot.services.hypotheses import AnalysisBusy

router = APIRouter(tags=["analysis"])


@router.post("/v1/analyze")
def post_analyze(rt: RuntimeDep, _auth: ReadAuth):
    try:
        # The background worker's lease: two analyses never reconcile over each other.
        return rt.hypotheses.analyze_exclusive(worker=f"{rt.worker_id}:api").as_dict()
    except AnalysisBusy as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})
