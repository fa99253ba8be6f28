"""``GET /v1/events``: stored events, oldest first, paged by cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from incidentbot.api import schemas
from incidentbot.api.deps import ReadAuth, RuntimeDep
from incidentbot.api.pagination import decode_cursor, encode_cursor

router = APIRouter(tags=["read"])


@router.get("/v1/events", response_model=schemas.EventPage)
def get_events(
    rt: RuntimeDep, _auth: ReadAuth, limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str | None = None
):
    rows, last = rt.read_model.events_page(limit=limit, after=decode_cursor(cursor))
    return {"events": rows, "next_cursor": encode_cursor(last)}
