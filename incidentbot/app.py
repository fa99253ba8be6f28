"""The whole service as one ASGI app: the HTTP API, the Slack endpoints, the local console (when
no Slack credentials are set) and the background workers, started and stopped with the app."""

from __future__ import annotations

import contextlib
import logging
import secrets
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from slack_sdk import WebClient
from starlette.concurrency import run_in_threadpool

from incidentbot.api import create_app
from incidentbot.api.auth import Credential
from incidentbot.console import mount_console
from incidentbot.console.demo import start_demo
from incidentbot.digest import schedule_digest
from incidentbot.localslack import Workspace
from incidentbot.localslack import create_app as localslack_app
from incidentbot.runtime import Runtime
from incidentbot.services.outbox import OutboxWorker
from incidentbot.slack.app import create_bolt_app, to_bolt_request, to_starlette_response
from incidentbot.slack.publish import Publisher
from incidentbot.workers import Workers

__all__ = ["build_app", "SlackSetup", "LOCAL_CHANNEL_ID", "LOCAL_CHANNEL_NAME"]

log = logging.getLogger(__name__)

LOCAL_CHANNEL_ID = "C0INCIDENTS"
LOCAL_CHANNEL_NAME = "incidents"


@dataclass
class SlackSetup:
    client: WebClient
    signing_secret: str
    workspace: Workspace | None = None  # the in-process local stand-in, when there is no real Slack


def local_slack(rt: Runtime, *, port: int) -> SlackSetup:
    ws = Workspace()
    ws.create_channel(LOCAL_CHANNEL_NAME, channel_id=LOCAL_CHANNEL_ID)
    for channel in rt.settings.channels:
        if not ws.channel_id(channel):
            ws.create_channel(channel.lstrip("#"))
    for name in ("alice", "bob", "carol"):
        ws.add_user(name)
    client = WebClient(token=ws.bot_token, base_url=f"http://127.0.0.1:{port}/localslack/api/")
    return SlackSetup(client=client, signing_secret=secrets.token_hex(16), workspace=ws)


def build_app(
    rt: Runtime,
    *,
    slack: SlackSetup | None = None,
    demo: bool | None = None,
    port: int = 8000,
    start_workers: bool = True,
) -> FastAPI:
    settings = rt.settings
    if slack is None:
        if settings.uses_real_slack:
            slack = SlackSetup(
                client=WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url),
                signing_secret=settings.slack_signing_secret or "",
            )
        else:
            slack = local_slack(rt, port=port)
    publisher = Publisher(rt, clock=rt.clock)
    outbox = OutboxWorker(
        rt.db,
        client=slack.client,
        render=publisher.render,
        clock=rt.clock,
        worker_id=rt.worker_id,
        on_delivered=publisher.on_delivered,
        metrics=rt.metrics,
    )

    def digest_job(scheduler):
        schedule_digest(rt, scheduler)

    workers = Workers(rt, outbox=outbox, publisher=publisher, digest_job=digest_job)
    bolt = create_bolt_app(rt, client=slack.client, signing_secret=slack.signing_secret)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        socket_handler = None
        if start_workers:
            workers.start()
        if settings.slack_app_token and settings.uses_real_slack:
            # Socket Mode's client (a WebSocket library) loads only when SLACK_APP_TOKEN asks for it.
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            socket_handler = SocketModeHandler(bolt, settings.slack_app_token)
            socket_handler.connect()
            log.info("Slack Socket Mode connected")
        demo_task = None
        if slack.workspace is not None and demo:
            # The console's feeder token, minted below with the app (None: the console is not mounted).
            demo_task = start_demo(rt, port=port, token=console_token)
        try:
            yield
        finally:
            if demo_task is not None:
                demo_task.stop()
            if socket_handler is not None:
                socket_handler.close()
            workers.stop()

    # The local console's demo feeder sends events over the real API with a per-process token:
    # an ordinary credential of scope `events`, minted here and handed to both sides.
    console = slack.workspace is not None and not settings.uses_real_slack
    console_token = secrets.token_urlsafe(32) if console else None
    credentials = [Credential.of(console_token, scope="events", who="console demo feeder")] if console_token else []
    app = create_app(rt, lifespan=lifespan, credentials=credentials)
    app.state.slack = slack
    app.state.workers = workers
    app.state.outbox = outbox
    app.state.publisher = publisher
    app.state.bolt = bolt

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request):
        if not slack.signing_secret:
            # Socket Mode without a signing secret: nothing could verify a request here, so none
            # is taken (an empty secret would accept anything signed with an empty key).
            return JSONResponse(
                {
                    "detail": "this service takes Slack requests over Socket Mode, not HTTP "
                    "(set SLACK_SIGNING_SECRET to accept them here too)"
                },
                status_code=404,
            )
        body = await request.body()
        resp = await run_in_threadpool(bolt.dispatch, to_bolt_request(body, request))
        workers.kick()
        return to_starlette_response(resp)

    if slack.workspace is not None:
        app.mount("/localslack", localslack_app(slack.workspace))
        mount_console(app, rt, slack=slack, port=port, token=console_token)
    return app
