"""``GET /v1/signatures`` (paged) and ``GET /v1/signatures/{sid}`` (with the parse explained)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from incidentbot.api import schemas
from incidentbot.api.deps import ReadAuth, RuntimeDep
from incidentbot.api.pagination import decode_cursor, encode_cursor

router = APIRouter(tags=["read"])


@router.get("/v1/signatures", response_model=schemas.SignaturePage)
def get_signatures(
    rt: RuntimeDep, _auth: ReadAuth, limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str | None = None
):
    rows, last = rt.read_model.signatures_page(limit=limit, after=decode_cursor(cursor))
    return {"signatures": rows, "next_cursor": encode_cursor(last)}


@router.get("/v1/signatures/{sid}")
def get_signature(sid: str, rt: RuntimeDep, _auth: ReadAuth):
    return rt.read_model.signature_detail(sid)  # LookupError: 404 (api/errors.py)
