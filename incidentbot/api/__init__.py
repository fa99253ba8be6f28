"""The HTTP shell: FastAPI routes that translate requests and call services."""

from incidentbot.api.app import create_app

__all__ = ["create_app"]
