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

# token shapes ---------------------------------------------------------------------------------
_HAS_DIGIT = re.compile(r"\d")
_EMPTY = frozenset(("()", "[]", "{}", '""', "''", "<>", "(<*>)", "[<*>]"))
_KV = re.compile(r"^([A-Za-z_][\w-]*[=:])")
_WORD_DIGIT = re.compile(r"^[A-Za-z][A-Za-z_-]*\d$")  # ssh2, eth0, SOCKS5: a word, let columns decide
_DATE_WORDS = frozenset(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec Mon Tue Wed Thu Fri Sat Sun "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun,".split()
)
_UNITS = frozenset("B KB MB GB TB kB KiB MiB GiB bytes ms us ns s sec secs seconds min mins minutes h hours %".split())
_UNIT_STRIP = "()[],;:."


def _tok(t: str) -> str:
    """Shape of one token: variables by shape become VAR; for key=value tokens only the value."""
    if t in _EMPTY:
        return VAR  # an empty bracketed value is a missing variable
    if t[0] == "/" and len(t) > 1 or "://" in t or t.count("/") >= 2:
        return VAR  # paths and URLs
    if not _HAS_DIGIT.search(t) or _WORD_DIGIT.match(t):
        return t
    m = _KV.match(t)
    return m.group(1) + VAR if m else VAR


def tokens(line: str) -> list[str]:
    """Shape-masked tokens of one line.

    Tokens holding a digit (numbers, ids, addresses, times, hex, UUIDs), paths/URLs and empty
    brackets are variables; a run of adjacent variables counts as one; month/day names and unit
    words glued to a variable are part of it.
    """
    out: list[str] = []
    for t in line[:4096].split():
        if not t.isalpha():
            t = _tok(t)
            if t == VAR:
                while out and out[-1] in _DATE_WORDS:
                    out.pop()
                if out and out[-1] == VAR:
                    continue
        elif out and out[-1] == VAR and t in _UNITS:
            continue
        if out and out[-1] == VAR and t.strip(_UNIT_STRIP) in _UNITS:
            continue
        out.append(t)
    return out


def preprocess(line: str) -> str:
    return " ".join(tokens(line))


def _is_wordlike(v: str) -> bool:
    return VAR not in v


# -- batch grouping -----------------------------------------------------------------------------

MIN_REPEAT = 1
GROUP_FACTOR = 1
FIRST_TOKEN_BUCKET = True
MIN_REST_CONST = 4
MERGE_MANY = False
MERGE_VAR = False
MAX_CONST_VALUES = 4  # a non-pattern column with more distinct values than this is a variable


def _group_bucket(rows: list[tuple[str, ...]], weights: list[int]) -> list[tuple[str, ...]]:
    """Template per distinct row of one bucket (rows are distinct, weights are their counts)."""
    n = len(rows[0])
    col: list[dict[str, int]] = [defaultdict(int) for _ in range(n)]
    for r, w in zip(rows, weights):
        for i, t in enumerate(r):
            col[i][t] += w
    # initial groups by longest common pattern
    groups: dict[tuple, list[int]] = defaultdict(list)
    for idx, r in enumerate(rows):
        freqs = [col[i][t] for i, t in enumerate(r)]
        fc: dict[int, int] = defaultdict(int)
        for f, t in zip(freqs, r):
            if t != VAR:
                fc[f] += 1
        best = max(fc.items(), key=lambda kv: (kv[1], kv[0]))[0] if fc else -1
        pat = tuple(t if (f >= best and t != VAR) else None for f, t in zip(freqs, r))
        groups[pat].append(idx)
    out: list[tuple[str, ...]] = [()] * len(rows)
    for pat, members in groups.items():
        _split(rows, weights, pat, members, out)
    return out


def _split(rows, weights, pat, members, out) -> None:
    n = len(pat)
    tmpl = list(pat)
    total = sum(weights[m] for m in members)
    const_cols = []
    for i in range(n):
        if pat[i] is not None:
            continue
        vals: dict[str, int] = defaultdict(int)
        for m in members:
            vals[rows[m][i]] += weights[m]
        if len(vals) == 1:
            tmpl[i] = next(iter(vals))
        elif (len(vals) <= MAX_CONST_VALUES and all(_is_wordlike(v) for v in vals)
              and min(vals.values()) >= MIN_REPEAT and total >= GROUP_FACTOR * len(vals)):
            const_cols.append(i)
        else:
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


def _merge(tm: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Across the templates of one bucket: a column in which templates otherwise equal take
    a variable value, or more than MAX_CONST_VALUES values, is a variable for all of them."""
    distinct = set(tm)
    if len(distinct) < 2:
        return tm
    n = len(next(iter(distinct)))
    mapping = {t: t for t in distinct}
    for _ in range(3):
        changed = False
        cur = set(mapping.values())
        for pos in range(n):
            by_key: dict[tuple, set[str]] = defaultdict(set)
            for t in cur:
                by_key[t[:pos] + t[pos + 1:]].add(t[pos])
            repl: dict[tuple, tuple] = {}
            for key, vals in by_key.items():
                if len(vals) > 1 and ((MERGE_MANY and len(vals) > MAX_CONST_VALUES) or (MERGE_VAR and any(VAR == v for v in vals))):
                    for v in vals:
                        old = key[:pos] + (v,) + key[pos:]
                        repl[old] = key[:pos] + (VAR,) + key[pos:]
            if repl:
                changed = True
                for k, v in mapping.items():
                    mapping[k] = repl.get(v, v)
                cur = set(mapping.values())
        if not changed:
            break
    return [mapping[t] for t in tm]


def templates_of(texts: Sequence[str]) -> list[str]:
    """Template string for each text (batch)."""
    tok_cache: dict[str, tuple[str, ...]] = {}
    counts: dict[tuple[str, ...], int] = defaultdict(int)
    per_text: list[tuple[str, ...]] = []
    for t in texts:
        tk = tok_cache.get(t)
        if tk is None:
            tk = tok_cache[t] = tuple(tokens(t))
        counts[tk] += 1
        per_text.append(tk)
    buckets: dict[tuple, list[tuple[str, ...]]] = defaultdict(list)
    for tk in counts:
        buckets[(len(tk), tk[0] if (tk and FIRST_TOKEN_BUCKET) else "")].append(tk)
    tmpl_of: dict[tuple[str, ...], tuple[str, ...]] = {(): ()}
    for (n, _), rows in buckets.items():
        if n == 0:
            continue
        tm = _merge(_group_bucket(rows, [counts[r] for r in rows]))
        for r, t in zip(rows, tm):
            tmpl_of[r] = t
    if FIRST_TOKEN_BUCKET:
        # the first-token split is undone where many first tokens share the rest of a template
        firsts: dict[tuple, set[str]] = defaultdict(set)
        for t in set(tmpl_of.values()):
            if t:
                firsts[t[1:]].add(t[0])
        for r, t in tmpl_of.items():
            if t and len(firsts[t[1:]]) > MAX_CONST_VALUES and sum(x != VAR for x in t[1:]) >= MIN_REST_CONST:
                tmpl_of[r] = (VAR,) + t[1:]
    joined = {r: " ".join(t) for r, t in tmpl_of.items()}
    return [joined[tk] for tk in per_text]


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
