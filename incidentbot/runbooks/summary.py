"""Short, readable runbook summaries for Slack."""

from __future__ import annotations

import re

from .loader import _find_section
from .model import Runbook

_ITEM = re.compile(r"^(?:[-*+]|\d+[.)])\s+(.*)$")


def first_steps(section_text: str | None, n: int = 3) -> list[str]:
    """The first ``n`` top-level list items of a section.

    Continuation lines and nested list items are folded into their parent item.
    Falls back to the first paragraph when the section has no list.
    """
    if not section_text:
        return []
    steps: list[str] = []
    current: list[str] | None = None
    top_indent: int | None = None
    in_fence = False
    for line in section_text.splitlines():
        if line.strip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        m = _ITEM.match(line.lstrip())
        if m and (top_indent is None or indent <= top_indent):
            top_indent = indent if top_indent is None else top_indent
            if current is not None:
                steps.append(" ".join(current))
                if len(steps) >= n:
                    return steps
            current = [m.group(1).strip()]
        elif current is not None and indent > (top_indent or 0):
            current.append(m.group(1).strip() if m else line.strip())
        elif current is not None:
            # a paragraph after the list ends it
            steps.append(" ".join(current))
            current = None
            if len(steps) >= n:
                return steps
    if current is not None and len(steps) < n:
        steps.append(" ".join(current))
    if not steps:
        para = section_text.strip().split("\n\n", 1)[0]
        steps = [" ".join(para.split())] if para else []
    return steps[:n]


def _clip(s: str, limit: int) -> str:
    return s if len(s) <= limit else s[: max(0, limit - 1)].rstrip() + "…"


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def to_mrkdwn(text: str) -> str:
    """Markdown inline marks as Slack shows them: **bold** → *bold*; a link keeps its words (and
    an absolute URL in brackets; a link to another runbook file means nothing in Slack)."""
    text = _BOLD.sub(r"*\1*", text)
    return _LINK.sub(
        lambda m: m.group(1) + (f" ({m.group(2)})" if m.group(2).startswith(("http://", "https://")) else ""), text
    )


def summarize(runbook: Runbook, max_chars: int = 1200, steps: int = 3) -> str:
    """Readable Slack summary: title, severity, owner and the first steps of Confirm and Act.

    Whole lines are kept while they fit in ``max_chars``; a step that does not
    fit is shortened (with "…") when enough room is left, otherwise dropped.
    """
    head = f"*{runbook.title}* (`{runbook.id}`, severity {runbook.severity}, owner {runbook.owner})"
    if len(head) >= max_chars:
        return _clip(head, max_chars)
    out = head
    for name in ("Confirm", "Act"):
        items = [to_mrkdwn(i) for i in first_steps(_find_section(runbook.sections, name), steps)]
        if not items:
            continue
        label = f"\n{name}:"
        if len(out) + len(label) + 20 > max_chars:
            break
        out += label
        for item in items:
            line = "\n• " + _clip(item, 280)
            room = max_chars - len(out)
            if len(line) <= room:
                out += line
            elif room >= 60:
                out += _clip(line, room)
                return out
            else:
                return out
    return out
