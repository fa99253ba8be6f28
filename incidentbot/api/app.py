"""FastAPI application: the contract's HTTP API. Routes translate JSON and call services.

The routes are module-level ``APIRouter``s in ``api/routes/``; what they take (the runtime, the
bearer-token checks) are ``Annotated`` dependencies in ``api/deps.py`` that read ``app.state``.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI

from incidentbot.api import schemas
from incidentbot.api.auth import Credential, Credentials
from incidentbot.api.errors import install_error_handlers
from incidentbot.api.limits import BodyLimit
from incidentbot.api.routes import api_router
from incidentbot.runtime import Runtime

__all__ = ["create_app"]


def create_app(rt: Runtime, *, lifespan=None, credentials: Iterable[Credential] = ()) -> FastAPI:
    """The API over ``rt``. ``credentials``: bearer tokens accepted besides the configured ones
    (the local console's, minted by ``incidentbot.app.build_app``)."""
    settings = rt.settings
    app = FastAPI(
        title="incidentbot",
        version="0.1.0",
        description="Failure signatures, root-cause hypotheses and channel votes for GPU training fleets.",
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.credentials = Credentials.for_settings(settings, metrics=rt.metrics, extra=credentials)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        on_refuse=lambda path: rt.metrics.refused.labels(
            path if path in ("/v1/events", "/v1/alertmanager") else "other", "too_large"
        ).inc(),
    )
    install_error_handlers(app)
    app.include_router(api_router)

    base_openapi = app.openapi

    def openapi() -> dict:
        # The events route reads its body itself (whole-batch validation), so FastAPI does not
        # know EventBatch/EventIn: add them to the components its requestBody refers to.
        if app.openapi_schema is None:
            spec = base_openapi()
            batch = schemas.EventBatch.model_json_schema(ref_template="#/components/schemas/{model}")
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            components.update(batch.pop("$defs", {}))
            components["EventBatch"] = batch
            return spec  # FastAPI's own openapi() kept it as app.openapi_schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend its schema
    return app
