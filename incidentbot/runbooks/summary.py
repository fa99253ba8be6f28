"""Short, readable runbook summaries for Slack."""

from __future__ import annotations

import re

from .loader import _find_section
from .model import Runbook

_ITEM = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+(.*)$")


def first_steps(section_text: str | None, n: int = 3) -> list[str]:
    """The first ``n`` top-level list items of a section (continuation lines joined)."""
    if not section_text:
        return []
    steps: list[str] = []
    current: list[str] | None = None
    in_fence = False
    for line in section_text.splitlines():
        if line.strip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        m = _ITEM.match(line)
        if m and not line.startswith("    "):
            if current is not None:
                steps.append(" ".join(current))
                if len(steps) >= n:
                    return steps
            current = [m.group(1).strip()]
        elif current is not None and line.strip() and line.startswith((" ", "\t")):
            if not _ITEM.match(line.strip()):
                current.append(line.strip())
        elif current is not None and not line.strip():
            continue
        elif current is not None:
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


def summarize(runbook: Runbook, max_chars: int = 1200, steps: int = 3) -> str:
    """Title, severity, owner and the first steps of Confirm and Act."""
    head = f"*{runbook.title}* (`{runbook.id}`, severity {runbook.severity}, owner {runbook.owner})"
    lines = [head]
    for name in ("Confirm", "Act"):
        items = first_steps(_find_section(runbook.sections, name), steps)
        if items:
            lines.append(f"{name}:")
            lines.extend(f"• {_clip(item, 300)}" for item in items)
    out = "\n".join(lines)
    return _clip(out, max_chars)
