"""Rank runbooks for a failure signature."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .model import Runbook, RunbookMatch

# "NVRM: Xid (PCI:0000:91:00): 79, ..." -- not SXid (NVSwitch), which has its own codes.
_XID_IN_TEXT = re.compile(r"(?<![A-Za-z])Xid\s*(?:\([^)]*\))?\s*:?\s*(\d{1,3})\b", re.IGNORECASE)

W_XID = 10.0
W_PATTERN = 6.0
W_EXTRA_PATTERN = 1.0
W_CATEGORY_PRIMARY = 5.0
W_CATEGORY = 4.0
W_CAUSE = 1.0


def xids_in_text(text: str) -> list[int]:
    """Xid codes named in kernel/driver log text, in order of first appearance."""
    seen: list[int] = []
    for m in _XID_IN_TEXT.finditer(text or ""):
        code = int(m.group(1))
        if code not in seen:
            seen.append(code)
    return seen


def match_runbooks(
    runbooks: Iterable[Runbook],
    *,
    category: str,
    cause_class: str = "",
    template: str = "",
    xid_codes: Iterable[int] = (),
    text: str = "",
) -> list[RunbookMatch]:
    """Return the runbooks relevant to a failure, best first.

    Evidence, strongest first: a listed Xid code (given, or read from
    ``template``/``text``), a regex pattern hit on the template or text, the
    signature category. The cause class only breaks ties between runbooks that
    already matched on something else.
    """
    codes: list[int] = []
    for c in list(xid_codes) + xids_in_text(template) + xids_in_text(text):
        try:
            c = int(c)
        except (TypeError, ValueError):
            continue
        if c not in codes:
            codes.append(c)

    results: list[RunbookMatch] = []
    for order, rb in enumerate(runbooks):
        rules = rb.match
        score = 0.0
        reasons: list[str] = []
        for code in codes:
            if code in rules.xid:
                score += W_XID
                reasons.append(f"Xid {code}")
        hits = rules.matching_patterns(template, text)
        if hits:
            score += W_PATTERN + W_EXTRA_PATTERN * min(len(hits) - 1, 3)
            reasons.extend(f"pattern '{h}'" for h in hits[:3])
        if category and category in rules.categories:
            score += W_CATEGORY_PRIMARY if rules.categories[0] == category else W_CATEGORY
            reasons.append(f"category {category}")
        if score <= 0:
            continue
        if cause_class and cause_class in rules.cause_classes:
            score += W_CAUSE
            reasons.append(f"cause class {cause_class}")
        results.append(RunbookMatch(runbook=rb, score=score, reasons=reasons))
        results[-1]._order = order  # type: ignore[attr-defined]

    results.sort(key=lambda m: (-m.score, m._order))  # type: ignore[attr-defined]
    return results
