"""``incidentbot serve``: the HTTP API, the Slack app, the background workers, one process."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn
from slack_sdk import WebClient
from sqlalchemy.engine import make_url

from incidentbot.app import LOCAL_CHANNEL_ID, build_app
from incidentbot.db import Database
from incidentbot.hosts import is_loopback
from incidentbot.logs import configure_logging
from incidentbot.runtime import build_runtime
from incidentbot.settings import load_settings
from incidentbot.slack.channels import resolve_channel_names

__all__ = ["serve"]

log = logging.getLogger(__name__)


def _with_channel_ids(settings):
    if not settings.uses_real_slack:
        return settings
    return resolve_channel_names(
        settings, WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)
    )


def worker_app():
    """The ASGI app of one worker process of ``serve --workers N`` (the parent migrated)."""
    settings = _with_channel_ids(load_settings())
    configure_logging(settings.log_format, settings.log_level)
    return build_app(
        build_runtime(settings, migrate=False), demo=False, port=int(os.environ.get("INCIDENTBOT_PORT", "8000"))
    )


def serve(
    *, host: str = "127.0.0.1", port: int = 8000, demo: bool | None = None, allow_remote: bool = False, workers: int = 1
) -> int:
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    if not settings.uses_real_slack and not is_loopback(host) and not (allow_remote or settings.allow_remote_console):
        print(
            f"incidentbot: refusing to serve the local console on {host}: without Slack credentials it is "
            "for this machine only. Set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET, or pass --allow-remote.",
            file=sys.stderr,
        )
        return 2
    if not settings.uses_real_slack and not settings.channel:
        # The local console shows one channel; alerts, polls and digests go there.
        settings = settings.model_copy(update={"channel": LOCAL_CHANNEL_ID})
    settings = _with_channel_ids(settings)
    if workers > 1:
        # Several processes: more CPU for parsing and fingerprinting; every claim is in the
        # database, so they share work safely. The local stand-in keeps its state in one process,
        # so this needs real Slack.
        if not settings.uses_real_slack:
            print(
                f"incidentbot: --workers {workers} needs Slack credentials: set SLACK_BOT_TOKEN and "
                "SLACK_SIGNING_SECRET (the local console keeps its channel in one process, so without them "
                "serve runs one process: leave --workers at 1)",
                file=sys.stderr,
            )
            return 2
        Database(settings.database_url).migrate()
        os.environ["INCIDENTBOT_PORT"] = str(port)
        uvicorn.run(
            "incidentbot.server:worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
        return 0
    settings = with_served_url(settings, host=host, port=port)
    rt = build_runtime(settings)
    # The demo writes simulated events into the database, so it runs only when asked: any client
    # of the contract would otherwise read events nobody sent.
    demo = bool(demo)
    if demo and settings.uses_real_slack:
        print(
            "incidentbot: --demo feeds the local console; it does not run with Slack credentials set", file=sys.stderr
        )
        demo = False
    app = build_app(rt, demo=demo, port=port)
    print(startup_banner(settings, host=host, port=port, workspace=app.state.slack.workspace, demo=demo), flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)
    return 0


def _shown_host(host: str) -> str:
    """The address a person can open: the unspecified address means this machine too."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def with_served_url(settings, *, host: str, port: int):
    """Links in messages (digests, alerts, polls) point at the address served, unless
    INCIDENTBOT_PUBLIC_URL says otherwise: the port comes from one place, ``serve --port``."""
    if "public_url" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"public_url": f"http://{_shown_host(host)}:{port}"})


def startup_banner(settings, *, host: str, port: int, workspace, demo: bool) -> str:
    """What ``serve`` prints on start: where the console and API are and, without Slack
    credentials, the local Slack stand-in's Web API URL and bot token, for
    ``slack_sdk.WebClient(token=..., base_url=...)``."""
    base = f"http://{_shown_host(host)}:{port}"
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    lines = [
        f"incidentbot serving on {base}  (database {database})",
        f"  HTTP API:             {base}/v1/  (OpenAPI at {base}/docs)",
    ]
    if workspace is not None:
        lines += [
            f"  console:              {base}/",
            f"  Slack stand-in API:   {base}/localslack/api/",
            f"  Slack stand-in token: {workspace.bot_token}",
            "  (no Slack credentials: messages go to the local stand-in; "
            "slack_sdk.WebClient(token=TOKEN, base_url=API) talks to it)",
        ]
    else:
        lines.append(f"  Slack:                {settings.slack_api_url}")
    if demo:
        lines.append("  demo: feeding a simulated incident into the console")
    return "\n".join(lines)
