"""The API's error answers, each said once: a bad request body (counted), the database being
unavailable (503, retry), and the read model's LookupError (404)."""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, InternalError, OperationalError

__all__ = ["BadRequest", "install_error_handlers", "parse_json"]

log = logging.getLogger(__name__)

# A refused body's status → the reason label of incidentbot_requests_refused_total.
_REASONS = {400: "bad_json", 413: "too_large", 422: "invalid"}


class BadRequest(Exception):
    """A request body the API refuses: the status and the JSON body that says why."""

    def __init__(self, status: int, body: dict):
        self.status, self.body = status, body


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise BadRequest(400, {"detail": "empty body: expected a JSON object"})
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest(400, {"detail": "body is not valid UTF-8"}) from None
    except RecursionError:
        raise BadRequest(400, {"detail": "JSON is nested too deeply"}) from None
    except ValueError as exc:
        raise BadRequest(400, {"detail": f"body is not valid JSON: {exc}"}) from None


async def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadRequest)  # registered for BadRequest only
    request.app.state.runtime.metrics.refused.labels(request.url.path, _REASONS.get(exc.status, str(exc.status))).inc()
    return JSONResponse(exc.body, status_code=exc.status)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
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


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    # The read model's "no such thing" (services/readmodel.py), said once for every route.
    # KeyError and IndexError are LookupErrors too, but from a bug, not from the request.
    if isinstance(exc, (KeyError, IndexError)):
        raise exc
    return JSONResponse({"detail": str(exc)}, status_code=404)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BadRequest, _bad_request)
    for db_error in (DBAPIError, psycopg.Error, sqlite3.Error):
        app.add_exception_handler(db_error, _database_error)
    app.add_exception_handler(LookupError, _not_found)
