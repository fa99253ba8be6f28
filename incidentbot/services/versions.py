"""Ordering version strings well enough to say "this job runs the fixed version or later"."""

from __future__ import annotations

import re

__all__ = ["compare_versions", "version_at_least"]

_CHUNK = re.compile(r"\d+|[A-Za-z]+")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")


def _key(v: str) -> tuple:
    v = v.strip().lstrip("vV")
    out = []
    for c in _CHUNK.findall(v):
        # Pre-release words sort below the release they precede (2.4.0rc1 < 2.4.0).
        out.append((1, int(c), "") if c.isdigit() else (0, 0, c.lower()))
    return tuple(out)


def compare_versions(a: str, b: str) -> int | None:
    """-1, 0, 1, or None when the two cannot be ordered (git shas, unrelated schemes)."""
    if a == b:
        return 0
    if _SHA.match(a) or _SHA.match(b):
        return None
    ka, kb = _key(a), _key(b)
    if not ka or not kb or not (ka[0][0] == kb[0][0] == 1):
        return None
    # Pad releases: 2.4 == 2.4.0
    n = max(len(ka), len(kb))
    ka += ((1, 0, ""),) * (n - len(ka))
    kb += ((1, 0, ""),) * (n - len(kb))
    return (ka > kb) - (ka < kb)


def version_at_least(actual: str | None, fixed_in: str) -> bool:
    """Whether ``actual`` is ``fixed_in`` or later. Unknown or unorderable: True (better to reopen
    and let a person look than to stay silent about a fix that did not hold)."""
    if not actual:
        return True
    c = compare_versions(actual, fixed_in)
    return True if c is None else c >= 0
