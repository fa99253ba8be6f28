"""``GET /v1/polls``: polls with their tallies and outcomes, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from incidentbot.api import schemas
from incidentbot.api.deps import ReadAuth, RuntimeDep

router = APIRouter(tags=["read"])


@router.get("/v1/polls", response_model=schemas.PollList)
def get_polls(
    rt: RuntimeDep, _auth: ReadAuth, status: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 200
):
    return {"polls": rt.read_model.polls(status=status, limit=limit)}
