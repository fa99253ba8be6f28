"""``GET /v1/hypotheses`` (by status) and ``GET /v1/hypotheses/{hid}`` (with its timeline)."""

from __future__ import annotations

from fastapi import APIRouter

from incidentbot.api import schemas
from incidentbot.api.deps import ReadAuth, RuntimeDep

router = APIRouter(tags=["read"])


@router.get("/v1/hypotheses", response_model=schemas.HypothesisList)
def get_hypotheses(rt: RuntimeDep, _auth: ReadAuth, status: str | None = None):
    return {"hypotheses": rt.read_model.hypotheses_list(status=status)}


@router.get("/v1/hypotheses/{hid}")
def get_hypothesis(hid: str, rt: RuntimeDep, _auth: ReadAuth):
    return rt.read_model.hypothesis_detail(hid)  # LookupError: 404 (api/errors.py)
