"""The whole service as one ASGI app: API + Slack endpoints + console, with workers on start-up."""

from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI

from incidentbot.api import create_app
from incidentbot.runtime import Runtime

__all__ = ["build_app"]

log = logging.getLogger(__name__)


def build_app(rt: Runtime, *, demo: bool | None = None, port: int = 8000) -> FastAPI:
    app = create_app(rt)
    return app
