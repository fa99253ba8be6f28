"""Slack mrkdwn → safe HTML for the local console.

Text in mrkdwn arrives Slack-escaped: the only markup is in angle brackets (``<url|text>``,
``<@U123>``, ``<!date^…|fallback>``) and a literal ``<`` is ``&lt;``. We cut the markup out first,
then turn every remaining piece of text back into characters (only ``&amp;``, ``&lt;``, ``&gt;``)
and HTML-escape it, so whatever a failure text contains comes out as text, never as HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime

from markupsafe import Markup

__all__ = ["mrkdwn", "plain", "slack_unescape", "EMOJI"]

EMOJI = {
    "wrench": "🔧",
    "satellite_antenna": "📡",
    "bug": "🐛",
    "floppy_disk": "💾",
    "building_construction": "🏗️",
    "grey_question": "❔",
    "warning": "⚠️",
    "lock": "🔒",
    "boom": "💥",
    "no_bell": "🔕",
    "bell": "🔔",
    "arrow_upper_right": "↗️",
    "white_check_mark": "✅",
    "x": "❌",
    "ballot_box_with_ballot": "🗳️",
    "chart_with_upwards_trend": "📈",
    "rotating_light": "🚨",
    "mag": "🔍",
    "memo": "📝",
    "fire": "🔥",
    "tada": "🎉",
    "thinking_face": "🤔",
    "calendar": "📆",
    "repeat": "🔁",
    "link": "🔗",
    "book": "📖",
    "information_source": "ℹ️",
    "heavy_check_mark": "✔️",
    "point_right": "👉",
    "eyes": "👀",
}

_SAFE_SCHEMES = ("http://", "https://", "mailto:")
_ANGLE = re.compile(r"<([^<>\n]{1,3000})>")
_PRE = re.compile(r"```(.*?)```", re.S)
_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])")
_EMOJI = re.compile(r":([a-z0-9_+\-]{1,40}):")
_HOLE = re.compile(r"\x00(\d+)\x00")


def slack_unescape(text: str) -> str:
    """Slack's three entities back to characters (``&amp;`` last, so ``&amp;lt;`` stays ``&lt;``)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _esc(text: str) -> str:
    # HTML escaping, not the mrkdwn escape (incidentbot.blocks.esc): the text arrives
    # Slack-escaped and leaves as HTML for the browser, a different language with its own rules.
    return html.escape(slack_unescape(text), quote=True)


def plain(text: object) -> Markup:
    """A plain_text object: shown as is (HTML-escaped, nothing interpreted)."""
    return Markup(html.escape(str(text if text is not None else ""), quote=True))


def _fmt_date(token: str) -> str | None:
    # <!date^1700000000^{date_short_pretty} {time}|fallback>
    parts = token.split("^")
    try:
        ts = int(parts[1])
    except (IndexError, ValueError):
        return None
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _angle(token: str, users: Callable[[str], str | None], rewrite_url: Callable[[str], str]) -> str:
    """HTML for one ``<…>`` control sequence (the inside, still Slack-escaped)."""
    target, sep, label = token.partition("|")
    if target.startswith("@"):
        uid = target[1:]
        name = label or users(uid) or uid
        return f'<span class="mention">@{_esc(name)}</span>'
    if target.startswith("#"):
        return f'<span class="mention">#{_esc(label or target[1:])}</span>'
    if target.startswith("!"):
        if target.startswith("!date^"):
            shown = label or _fmt_date(target) or ""
            return f'<time class="date">{_esc(shown)}</time>'
        if target.startswith("!subteam^"):
            return f'<span class="mention">{_esc(label or "@" + target[9:])}</span>'
        return f'<span class="mention">@{_esc(label or target[1:])}</span>'
    url = slack_unescape(target)
    if url.lower().startswith(_SAFE_SCHEMES):
        href = rewrite_url(url)
        text = _inline(label, users, rewrite_url, links=False) if sep else html.escape(url)
        return f'<a href="{html.escape(href, quote=True)}" target="_blank" rel="noopener noreferrer">{text}</a>'
    return _esc(label or target)


def _emoji(m: re.Match) -> str:
    return EMOJI.get(m.group(1), m.group(0))


def _inline(text: str, users, rewrite_url, *, links: bool = True) -> str:
    holes: list[str] = []

    def hole(html_: str) -> str:
        holes.append(html_)
        return f"\x00{len(holes) - 1}\x00"

    text = _CODE.sub(lambda m: hole(f"<code>{_esc(m.group(1))}</code>"), text)
    if links:
        text = _ANGLE.sub(lambda m: hole(_angle(m.group(1), users, rewrite_url)), text)
    out = _esc(text)
    out = _BOLD.sub(r"<b>\1</b>", out)
    out = _ITALIC.sub(r"<i>\1</i>", out)
    out = _STRIKE.sub(r"<s>\1</s>", out)
    out = _EMOJI.sub(_emoji, out)
    out = out.replace("\n", "<br>")
    # holes may nest (a link label holds none, but be exact): restore until none left
    while _HOLE.search(out):
        out = _HOLE.sub(lambda m: holes[int(m.group(1))], out)
    return out


def mrkdwn(
    text: object, *, users: Callable[[str], str | None] | None = None, rewrite_url: Callable[[str], str] | None = None
) -> Markup:
    """Render Slack mrkdwn as HTML. `users` maps a user id to a display name; `rewrite_url` may
    turn the bot's public URLs into local ones."""
    users = users or (lambda _uid: None)
    rewrite_url = rewrite_url or (lambda u: u)
    src = str(text if text is not None else "").replace("\x00", "")
    parts: list[str] = []
    pos = 0
    for m in _PRE.finditer(src):
        parts.append(_inline(src[pos : m.start()], users, rewrite_url))
        parts.append(f"<pre>{_esc(m.group(1))}</pre>")
        pos = m.end()
    parts.append(_inline(src[pos:], users, rewrite_url))
    return Markup("".join(parts))
