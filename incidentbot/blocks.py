"""Block Kit primitives (pure): every untrusted text is escaped and cut to Slack's limits.

The floor below both shells that speak Slack's message format: ``slack/`` (alerts, polls,
replies) and ``digest/`` (the weekly post) build their messages from these, and neither imports
the other. ``esc`` is the one mrkdwn escape of the package.

mrkdwn has three control characters, ``&``, ``<`` and ``>``; mentions and links exist only in
angle-bracket form, so escaping those makes failure texts, job names and user input inert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

__all__ = [
    "esc",
    "plain",
    "cut",
    "code",
    "section",
    "fields",
    "context",
    "actions",
    "button",
    "header",
    "divider",
    "limit_blocks",
    "link",
    "link_url",
    "SECTION_LIMIT",
    "FIELD_LIMIT",
    "BUTTON_TEXT_LIMIT",
    "MAX_BLOCKS",
    "fmt_time",
    "plural",
]

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
HEADER_LIMIT = 150
MAX_BLOCKS = 50
ELLIPSIS = "…"


def esc(text: object) -> str:
    """Escape untrusted text for mrkdwn (and for plain_text fallbacks, harmlessly)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: object) -> str:
    """Untrusted text for plain_text fields. Slack does not parse mentions there, but a copy of
    the text may be pasted elsewhere: angle brackets become look-alikes, so it stays inert."""
    return str(text).replace("<", "‹").replace(">", "›")


def cut(text: str, limit: int, *, more: str = "") -> str:
    """Cut *escaped* text to ``limit`` characters, never inside an ``&amp;``-style entity."""
    if len(text) <= limit:
        return text
    room = max(0, limit - len(ELLIPSIS) - len(more))
    head = text[:room]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + ELLIPSIS + more


def code(text: str, limit: int = 1500, *, more_url: str | None = None) -> str:
    """A code block of untrusted text (escaped; backticks cannot close it early). When the text is
    cut and ``more_url`` is given, a link to the whole of it follows the block."""
    body = esc(text).replace("```", "`\u200b``")
    link = f"\n<{more_url}|Full text>" if more_url else ""
    if len(body) <= limit - 6:
        return "```" + body + "```"
    return "```" + cut(body, limit - 6 - len(link)) + "```" + link


def link_url(url: str) -> str:
    """A URL for the ``<url|label>`` form: escaped, and without ``|`` or whitespace, which would
    end the URL early and let whoever wrote it write the label too (``https://x|<anything>``)."""
    return esc(url).replace("|", "%7C").replace(" ", "%20").replace("\n", "%0A").replace("\t", "%09")


def link(url: str, label: str) -> str:
    """A mrkdwn link; ``label`` is mrkdwn already (escape untrusted text first)."""
    return f"<{link_url(url)}|{label}>"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def fmt_time(dt: datetime | None) -> str:
    if dt is None:
        return "—"
    dt = dt.astimezone(UTC)
    # Slack renders <!date^…> in each reader's time zone; the fallback is UTC.
    return f"<!date^{int(dt.timestamp())}^{{date_short_pretty}} {{time}}|{dt:%Y-%m-%d %H:%M} UTC>"


def section(text: str, *, accessory: dict | None = None, block_id: str | None = None) -> dict:
    b: dict = {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_LIMIT) or " "}}
    if accessory:
        b["accessory"] = accessory
    if block_id:
        b["block_id"] = block_id[:255]
    return b


def fields(pairs: Iterable[tuple[str, str]]) -> dict:
    items = [{"type": "mrkdwn", "text": cut(f"*{k}*\n{v}", FIELD_LIMIT)} for k, v in list(pairs)[:10]]
    return {"type": "section", "fields": items}


def context(*texts: str) -> dict:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": cut(t, SECTION_LIMIT) or " "} for t in texts[:10]],
    }


def header(text: str) -> dict:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": cut(plain(text), HEADER_LIMIT) or " ", "emoji": False},
    }


def divider() -> dict:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str = "", *, style: str | None = None, url: str | None = None) -> dict:
    b: dict = {
        "type": "button",
        "text": {"type": "plain_text", "text": cut(plain(text), BUTTON_TEXT_LIMIT), "emoji": False},
        "action_id": action_id[:255],
    }
    if value:
        b["value"] = value[:BUTTON_VALUE_LIMIT]
    if style in ("primary", "danger"):
        b["style"] = style
    if url:
        b["url"] = url[:3000]
    return b


def actions(buttons: Sequence[dict], *, block_id: str | None = None) -> dict:
    b: dict = {"type": "actions", "elements": list(buttons)[:25]}
    if block_id:
        b["block_id"] = block_id[:255]
    return b


def limit_blocks(blocks: list[dict], *, more_text: str = "") -> list[dict]:
    """Keep a message within 50 blocks, saying what was left out."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    kept = blocks[: MAX_BLOCKS - 1]
    return kept + [context(f"{ELLIPSIS} and {len(blocks) - len(kept)} more blocks. {more_text}".strip())]
