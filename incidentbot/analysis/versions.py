"""The one version order of incidentbot (analysis onsets and "fixed in" checks both use it).

Natural order on number runs (v1.10 > v1.9, 2.3.0 < 2.3.1, 2.4 == 2.4.0); pre-release words sort
below the release they precede (2.4.0rc1 < 2.4.0, 2.4.0a1 < 2.4.0b1 < 2.4.0rc1), while a local
build tag after the release sorts above it (2.3.0+cu121 > 2.3.0). Git shas do not order.
"""

from __future__ import annotations

import re

__all__ = ["version_key", "compare_versions", "version_at_least"]

_CHUNK = re.compile(r"\d+|[A-Za-z]+")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_PRE = {"dev": 0, "a": 1, "alpha": 1, "b": 2, "beta": 2, "c": 3, "rc": 3, "pre": 3, "preview": 3}


def version_key(v: str) -> tuple:
    """A sort key: releases as number tuples (trailing zeros dropped, so 2.4 == 2.4.0), then what
    follows them: a pre-release below (rc1 < release), anything else (a local tag) above."""
    s = v.strip().lstrip("vV")
    local = ""
    if "+" in s:
        s, local = s.split("+", 1)
    nums: list[int] = []
    tail: list[tuple] = []
    for c in _CHUNK.findall(s):
        if c.isdigit() and not tail:
            nums.append(int(c))
        else:
            tail.append((0, int(c), "") if c.isdigit() else (1, 0, c.lower()))
    while nums and nums[-1] == 0:
        nums.pop()
    if tail and tail[0][0] == 1 and tail[0][2] in _PRE:
        phase = (0, _PRE[tail[0][2]])  # pre-release: below the bare release
        tail = tail[1:]
    elif tail:
        phase = (2, 0)  # a word after the release that is not a pre-release: after it
    else:
        phase = (1, 0)
    return (tuple(nums), phase, tuple(tail), local.lower())


def compare_versions(a: str, b: str) -> int | None:
    """-1, 0, 1, or None when the two cannot be ordered (git shas, unrelated schemes)."""
    if a == b:
        return 0
    if _SHA.match(a) or _SHA.match(b):
        return None
    sa, sb = a.strip().lstrip("vV"), b.strip().lstrip("vV")
    if not sa[:1].isdigit() or not sb[:1].isdigit():
        return None
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)


def version_at_least(actual: str | None, fixed_in: str) -> bool:
    """Whether ``actual`` is ``fixed_in`` or later. Unknown or unorderable: True (better to reopen
    and let a person look than to stay silent about a fix that did not hold)."""
    if not actual:
        return True
    c = compare_versions(actual, fixed_in)
    return True if c is None else c >= 0
