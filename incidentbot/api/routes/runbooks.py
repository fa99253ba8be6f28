"""``GET /v1/runbooks``: each runbook with the incidents it served."""

from __future__ import annotations

from fastapi import APIRouter

from incidentbot.api import schemas
from incidentbot.api.deps import ReadAuth, RuntimeDep

router = APIRouter(tags=["read"])


@router.get("/v1/runbooks", response_model=schemas.RunbookList)
def get_runbooks(rt: RuntimeDep, _auth: ReadAuth):
    return {"runbooks": rt.read_model.runbook_usage()}
