"""A local stand-in for Slack: Web API server, in-memory workspace, and a user-side simulator.

Typical test use::

    from slack_sdk import WebClient
    from incidentbot.localslack import Workspace, run_in_thread

    ws = Workspace()
    ch = ws.create_channel("gpu-incidents")
    server = run_in_thread(ws)
    client = WebClient(token=ws.bot_token, base_url=server.api_url)
    client.chat_postMessage(channel=ch, text="hi")
    ws.wait_for(lambda: ws.messages(ch))
    server.stop()

Embedding in the service: `app.mount("/localslack", create_app(ws))`.
"""

from .api import create_app
from .calllog import CallLog, CallRecord
from .client import BotResponse, SlackSimulator
from .faults import Fault, FaultPlan
from .ratelimits import RateLimits
from .responses import ResponseUrls
from .server import RunningServer, run_in_thread
from .state import Workspace
from .validation import validate_blocks, validate_message, validate_view

__all__ = [
    "BotResponse",
    "CallLog",
    "CallRecord",
    "Fault",
    "FaultPlan",
    "RateLimits",
    "ResponseUrls",
    "RunningServer",
    "SlackSimulator",
    "Workspace",
    "create_app",
    "run_in_thread",
    "validate_blocks",
    "validate_message",
    "validate_view",
]
