"""Rendering a computed digest: Jinja2 templates to Block Kit (mrkdwn) and to plain text."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from incidentbot.blocks import MAX_BLOCKS, SECTION_LIMIT, context, cut, divider, esc, header, link, plural, section

from .compute import HYPOTHESIS_KINDS, Digest

__all__ = ["LIMITS", "blocks_for", "text_for", "summary_line", "fmt_duration", "fmt_range"]

# The longest lists are cut to these many items, with "… and N more" and a link.
LIMITS = SimpleNamespace(new=8, hyp=6, polls=5, attention=8, title=90)
TEMPLATES = Path(__file__).parent / "templates"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def fmt_duration(td: timedelta) -> str:
    secs = int(td.total_seconds())
    if secs < 60:
        return "under a minute"
    days, rem = divmod(secs, 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def fmt_range(start: datetime, last: datetime) -> str:
    if start.year != last.year:
        return f"{start.day} {start:%b %Y} – {last.day} {last:%b %Y}"
    if start.month != last.month:
        return f"{start.day} {start:%b} – {last.day} {last:%b %Y}"
    return f"{start.day}–{last.day} {last:%b %Y}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{round(x * 100)}%"


def _env(*, mrkdwn: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    if mrkdwn:
        # Untrusted text: one line, escaped for mrkdwn, cut without splitting an entity.
        env.filters["t"] = lambda v, limit=LIMITS.title: cut(esc(_one_line(v)), limit)
    else:
        env.filters["t"] = lambda v, limit=LIMITS.title: _short(_one_line(v), limit)
    env.filters.update(esc=esc, n=lambda v: f"{v:,}", plural=plural, pct=_pct, dur=fmt_duration)
    env.globals.update(limits=LIMITS, kinds=HYPOTHESIS_KINDS, link=link)
    return env


_ENVS: dict[bool, Environment] = {}


def _get_env(mrkdwn: bool) -> Environment:
    if mrkdwn not in _ENVS:
        _ENVS[mrkdwn] = _env(mrkdwn=mrkdwn)
    return _ENVS[mrkdwn]


def text_for(d: Digest) -> str:
    out = _get_env(False).get_template("digest.txt.j2").render(d=d, range_text=fmt_range(d.start, d.last_day))
    return "\n".join(line.rstrip() for line in out.strip("\n").splitlines()) + "\n"


def summary_line(d: Digest) -> str:
    """The notification text (escaped: Slack shows it as mrkdwn in notifications)."""
    if d.quiet:
        return f"Incident digest {d.week}: quiet week."
    return (
        f"Incident digest {d.week}: {plural(d.events, 'failure')}, {plural(len(d.new_signatures), 'new signature')}, "
        f"{len(d.hypotheses['opened'])} hypotheses opened, {len(d.hypotheses['resolved'])} resolved."
    )


def blocks_for(d: Digest, *, command: str = "/incident") -> tuple[str, list[dict]]:
    # The template's macros are attributes of its module, which a type checker cannot know.
    m: Any = _get_env(True).get_template("digest.mrkdwn.j2").module

    def sec(macro) -> dict:
        return section(cut(str(macro(d)).strip("\n"), SECTION_LIMIT))

    blocks: list[dict] = [
        header(f"Incident digest · {d.week}"),
        context(esc(f"{fmt_range(d.start, d.last_day)} ({d.tz})")),
    ]
    if d.quiet:
        blocks.append(sec(m.quiet))
    else:
        blocks += [
            sec(m.summary),
            divider(),
            sec(m.new_signatures),
            sec(m.top),
            divider(),
            sec(m.hypotheses),
            sec(m.votes),
        ]
    if d.attention:
        blocks += [divider(), sec(m.attention)]
    blocks.append(context(esc(f"{command} digest preview {d.week}") + " shows this digest again."))
    assert len(blocks) <= MAX_BLOCKS
    return esc(summary_line(d)), blocks
