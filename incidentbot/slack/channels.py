"""INCIDENTBOT_CHANNEL may name channels (#gpu-incidents); the service works with ids, because
Slack's edit and history methods accept nothing else. Names are looked up once at start."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from incidentbot.settings import CHANNEL_ID, Settings, SettingsError

__all__ = ["resolve_channel_names"]

log = logging.getLogger(__name__)


def resolve_channel_names(settings: Settings, client: WebClient) -> Settings:
    """Settings whose INCIDENTBOT_CHANNEL holds ids only. A name no channel has is a SettingsError;
    when the look-up itself is impossible (no channels:read scope, Slack unreachable) the names
    stay, with a warning: posting by name still works, editing those posts does not."""
    names = [c for c in settings.channels if not CHANNEL_ID.fullmatch(c)]
    if not names:
        return settings
    found: dict[str, str] = {}
    try:
        cursor = None
        while True:
            resp = client.conversations_list(
                types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=cursor
            )
            listed: list[dict[str, Any]] = resp.get("channels", [])
            found.update({ch["name"]: ch["id"] for ch in listed})
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
    except (SlackApiError, OSError) as exc:
        reason = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
        log.warning(
            "INCIDENTBOT_CHANNEL: could not look up %s (%s); give channel ids, or grant the channels:read "
            "scope: alerts are posted by name, but cannot be edited in place",
            ", ".join(names),
            reason,
        )
        return settings
    missing = [n for n in names if n.lstrip("#") not in found]
    if missing:
        raise SettingsError(
            f"INCIDENTBOT_CHANNEL: no channel named {', '.join(missing)} is visible to the bot; "
            "check the name, invite the bot to a private channel, or give the channel id "
            "(channel details → About)"
        )
    ids = [c if CHANNEL_ID.fullmatch(c) else found[c.lstrip("#")] for c in settings.channels]
    log.info(
        "INCIDENTBOT_CHANNEL: %s",
        ", ".join(f"{c} = {i}" for c, i in zip(settings.channels, ids, strict=True) if c != i),
    )
    return settings.model_copy(update={"channel": ",".join(ids)})
