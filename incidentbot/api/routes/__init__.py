"""The API's routes, one module per resource; ``api_router`` includes them in the order the
OpenAPI document lists them."""

from fastapi import APIRouter

from incidentbot.api.routes import analysis, events, hypotheses, ingest, ops, polls, runbooks, signatures

__all__ = ["api_router"]

api_router = APIRouter()
for module in (ops, ingest, events, signatures, hypotheses, polls, runbooks, analysis):
    api_router.include_router(module.router)
