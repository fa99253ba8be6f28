"""Generic template mining for text no parser knows.

Two entry points:

* ``generic_key(line)``: deterministic, per-text masking used by ``fingerprint()`` for category
  ``other`` (no state).
* ``group(texts)`` / ``TemplateMiner``: batch grouping of many log lines into templates, using
  the same general masking plus token-position statistics (ideas from Brain and Drain):

  1. mask tokens that are variables by shape alone (numbers, hex, IPs, ids with digits, paths);
  2. bucket lines by token count;
  3. inside a bucket, count each (position, token); for every line pick the frequency shared by
     the largest number of its positions (its "longest common pattern"); lines with the same
     pattern form an initial group;
  4. inside a group, a column outside the pattern whose values are few, word-like, and each
     repeated, is a constant that splits the group; otherwise it is a variable.
  5. groups whose templates become identical after step 4 are merged.

  No rule names a particular log source; there is one configuration for every input.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Iterable, Sequence

__all__ = ["preprocess", "tokens", "group", "TemplateMiner", "templates_of"]

VAR = "<*>"

# general shapes of variable text, one alternation, replaced by VAR -----------------------------
_MON = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_VAR_RX = re.compile(
    r"(?:" + _DAY + r",?\s+)?" + _MON + r"\s+\d{1,2},?(?:\s+\d{4})?\s+\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:\s+\d{4})?"  # dates
    r"|\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?"
    r"|\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"  # IPv4[:port]
    r"|(?<![\w:])(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{1,4}(?![\w:])"  # IPv6 / MAC
    r"|\b0x[0-9a-fA-F]+\b"
    r"|\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b"  # UUID
    r"|\(\s*[-+]?\d+(?:\.\d+)?\s*[A-Za-z%]{0,3}\s*\)"  # "(18.4 KB)", "(12)"
    r"|<?\b\d+(?:\.\d+)?\s?(?:KB|MB|GB|kB|B|bytes|ms|sec|secs|seconds|s|min|mins)\b"  # number+unit
    r"|\b[0-9a-fA-F]*\d[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b(?=.)"  # hex-looking runs with a digit
    r"|[-+]?\d+(?:[.:,]\d+)*"  # numbers, times, versions
)
_SPLIT = re.compile(r"\s+")
_HAS_DIGIT = re.compile(r"\d")


def preprocess(line: str) -> str:
    return _VAR_RX.sub(VAR, line)


def _norm_token(tok: str) -> str:
    return tok


_VAR_RUN = re.compile(r"<\*>(?:\s+<\*>)+")


_KV = re.compile(r"^([A-Za-z_][\w.-]*[=:])")


def _tok(t: str) -> str:
    """A token holding a digit (or an already-masked part) is a variable; for key=value tokens
    only the value is."""
    if t == VAR or not (_HAS_DIGIT.search(t) or VAR in t):
        return t
    m = _KV.match(t)
    return m.group(1) + VAR if m else VAR


def tokens(line: str) -> list[str]:
    """Shape-masked tokens; a run of adjacent variables counts as one variable."""
    out: list[str] = []
    for t in _VAR_RX.sub(VAR, line[:4096]).split():
        t = _tok(t)
        if t == VAR and out and out[-1] == VAR:
            continue
        out.append(t)
    return out


def _is_wordlike(v: str) -> bool:
    return v != VAR


# -- batch grouping -----------------------------------------------------------------------------

MIN_REPEAT = 1
GROUP_FACTOR = 1
FIRST_TOKEN_BUCKET = False
MAX_CONST_VALUES = 3  # a non-pattern column with more distinct values than this is a variable


def _group_bucket(rows: list[list[str]]) -> list[tuple[str, ...]]:
    """Return a template per row of one length bucket."""
    n = len(rows[0])
    col = [Counter() for _ in range(n)]
    for r in rows:
        for i, t in enumerate(r):
            col[i][t] += 1
    # initial groups by longest common pattern
    groups: dict[tuple, list[int]] = defaultdict(list)
    for idx, r in enumerate(rows):
        freqs = [col[i][t] for i, t in enumerate(r)]
        fc = Counter(f for f, t in zip(freqs, r) if t != VAR)
        if fc:
            best = max(fc.items(), key=lambda kv: (kv[1], kv[0]))[0]
        else:
            best = -1
        pat = tuple(t if (f >= best and t != VAR) else None for f, t in zip(freqs, r))
        groups[pat].append(idx)
    out: list[tuple[str, ...] | None] = [None] * len(rows)
    for pat, members in groups.items():
        _split(rows, pat, members, out)
    return out  # type: ignore[return-value]


def _split(rows, pat, members, out) -> None:
    n = len(pat)
    free = [i for i in range(n) if pat[i] is None]
    tmpl = list(pat)
    const_cols = []
    for i in free:
        vals = Counter(rows[m][i] for m in members)
        if len(vals) == 1:
            tmpl[i] = next(iter(vals))
        elif (len(vals) <= MAX_CONST_VALUES and all(_is_wordlike(v) for v in vals)
              and min(vals.values()) >= MIN_REPEAT and len(members) >= GROUP_FACTOR * len(vals)):
            const_cols.append(i)
        else:
            tmpl[i] = VAR
    for i in range(n):
        if tmpl[i] is None and i not in const_cols:
            tmpl[i] = VAR
    if not const_cols:
        t = tuple(tmpl)
        for m in members:
            out[m] = t
        return
    for m in members:
        t = list(tmpl)
        for i in const_cols:
            t[i] = rows[m][i]
        out[m] = tuple(t)


def templates_of(texts: Sequence[str]) -> list[str]:
    """Template string for each text (batch)."""
    toks = [tokens(t) for t in texts]
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, tk in enumerate(toks):
        buckets[(len(tk), tk[0] if (tk and FIRST_TOKEN_BUCKET) else "")].append(i)
    result: list[str] = [""] * len(texts)
    for (n, _), idxs in buckets.items():
        if n == 0:
            for i in idxs:
                result[i] = ""
            continue
        rows = [toks[i] for i in idxs]
        tm = _group_bucket(rows)
        for i, t in zip(idxs, tm):
            result[i] = " ".join(t)
    return result


def group(texts: Iterable[str]) -> list[int]:
    """Group ids (0..k-1, in order of first appearance) for a batch of log lines."""
    tl = templates_of(list(texts))
    ids: dict[str, int] = {}
    return [ids.setdefault(t, len(ids)) for t in tl]


class TemplateMiner:
    """Collects lines, then groups them in one batch pass (``group()``).

    ``add(text)`` returns a provisional group id from the stateless shape-masked template; the
    batch ``groups()`` result refines it with position statistics over everything added.
    """

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._ids: dict[str, int] = {}

    def add(self, text: str) -> int:
        self._texts.append(text)
        key = " ".join(tokens(text))
        return self._ids.setdefault(key, len(self._ids))

    def groups(self) -> list[int]:
        return group(self._texts)

    def templates(self) -> list[str]:
        return templates_of(self._texts)
