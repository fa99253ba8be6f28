"""Batch template mining for many log lines (``group(texts)`` / ``TemplateMiner``).

``fingerprint()`` handles one text at a time (its generic parser lives in ``engine.p_other``);
this module groups a corpus of lines, e.g. for the Loghub benchmark, with general rules only —
nothing names a log source, one configuration for every input:

1. Shape masking per token (``tokens``): a token holding a digit (numbers, ids, addresses,
   times, hex, UUIDs), a path/URL/component name (``a/b``), a dotted name (``a.b.c``, unless
   it ends in an UPPER_CASE constant), an empty bracket or a boolean is a variable; in
   ``key=value`` and ``key:value`` parts (also comma lists of them) only the value is, and a
   quoted value counts as one token; a word ending in one digit (``eth0``, ``ssh2``) stays a
   word and the column statistics decide; dot leaders (``label......0``) separate label and
   value; a run of variables counts as one; month/day names and unit words glued to a
   variable join it.
2. Distinct token tuples are bucketed by (length, first token) and weighted by their counts.
3. Inside a bucket, each (position, token) is counted; every row takes the frequency shared
   by most of its constant positions as its "longest common pattern" (Brain's idea); rows with
   the same pattern form a group.
4. Inside a group, a column outside the pattern is a constant that splits the group when it
   holds at most ``MAX_CONST_VALUES`` word values, or only UPPER_CASE enum-like values;
   otherwise it is a variable.
5. Templates differing only in their first token are merged again when more than
   ``MAX_CONST_VALUES`` first tokens share a rest with at least ``MIN_REST_CONST`` constants.

Rows with equal templates form one group.  Cost: one pass over the lines plus work over the
distinct token tuples only.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

__all__ = ["preprocess", "tokens", "group", "TemplateMiner", "templates_of"]

VAR = "<*>"

# token shapes ---------------------------------------------------------------------------------
_HAS_DIGIT = re.compile(r"\d")
_EMPTY = frozenset(("()", "[]", "{}", '""', "''", "<>", "(<*>)", "[<*>]"))
_WORD_DIGIT = re.compile(r"^[A-Za-z][A-Za-z_-]*\d$")  # ssh2, eth0, SOCKS5: a word, let columns decide
_DATE_WORDS = frozenset(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec Mon Tue Wed Thu Fri Sat Sun "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun,".split()
)
_UNITS = frozenset("B KB MB GB TB kB KiB MiB GiB bytes ms us ns s sec secs seconds min mins minutes h hours %".split())
_UNIT_STRIP = "()[],;:."


_QUOTE_STRIP = "\"'(){}[]<>,;"
_QUOTED = re.compile(r'=("[^"\n]{0,200}"|\'[^\'\n]{0,200}\')')
_LEADER = re.compile(r"(?<=[A-Za-z])\.{3,}(?=\w)")
_SEG = re.compile(r"([,;])")
_KV_PREFIX = re.compile(r"^([A-Za-z_][A-Za-z_-]*(?::[A-Za-z_][A-Za-z_-]*)*?[=:])(?=.)")
_BOOL = frozenset(("true", "false", "True", "False", "TRUE", "FALSE", "null", "None"))


def _is_var_value(v: str) -> bool:
    """A value that is a variable by its shape alone."""
    if v in _EMPTY or (MASK_BOOL and v in _BOOL):
        return True  # an empty bracketed value is a missing variable; booleans are values
    if "/" in v and (v[0] == "/" and len(v) > 1 or "://" in v or v.count("/") >= 2 or "." in v):
        return True  # paths, URLs, package/component names
    if DOTTED_NAMES and v.count(".") >= 2 and _DOTTED.match(v.strip(_QUOTE_STRIP)):
        return True  # host names and other dotted names (a.b.c)
    return bool(_HAS_DIGIT.search(v)) and not _WORD_DIGIT.match(v)


def _seg(seg: str) -> str:
    m = _KV_PREFIX.match(seg)
    if m:
        return m.group(1) + VAR if _is_var_value(seg[m.end() :]) else seg
    return VAR if _is_var_value(seg) else seg


def _tok(t: str) -> str:
    """Shape of one token: variables by shape become VAR; in key=value / key:value parts (also
    comma-separated lists of them) only the values are."""
    if "=" not in t and ":" not in t:
        return VAR if _is_var_value(t) else t
    if "," in t or ";" in t:
        parts = _SEG.split(t)
        out = "".join(_seg(p) if i % 2 == 0 else p for i, p in enumerate(parts))
    else:
        out = _seg(t)
    if out.startswith(VAR) and len(out) > len(VAR) and VAR in out[len(VAR) :] and "=" not in out:
        return VAR
    return out


def tokens(line: str) -> list[str]:
    """Shape-masked tokens of one line.

    Tokens holding a digit (numbers, ids, addresses, times, hex, UUIDs), paths/URLs and empty
    brackets are variables; a run of adjacent variables counts as one; month/day names and unit
    words glued to a variable are part of it.
    """
    out: list[str] = []
    line = line[:4096]
    if '="' in line or "='" in line:  # a quoted key=value value is one token even with spaces
        line = _QUOTED.sub(lambda m: m.group(0).replace(" ", "_"), line)
    if "..." in line:  # dot leaders ("threshold......0") separate a label from its value
        line = _LEADER.sub(" ", line)
    for t in line.split():
        if not t.isalpha() or (MASK_BOOL and t in _BOOL):
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

MASK_BOOL = True
DOTTED_NAMES = True
_DOTTED = re.compile(r"^[A-Za-z][\w-]*(?:\.[A-Za-z][\w-]*){2,}(?<!\.[A-Z][A-Z_])(?<![A-Z_][A-Z_])[.,:;]?$")
ENUM_CONSTANTS = True
_ENUM = re.compile(r"^[A-Z][A-Z_]{2,}[.,;:]?$")
FIRST_TOKEN_BUCKET = True
MIN_REST_CONST = 4
MAX_CONST_VALUES = 4  # a non-pattern column with more distinct values than this is a variable


def _group_bucket(rows: list[tuple[str, ...]], weights: list[int]) -> list[tuple[str, ...]]:
    """Template per distinct row of one bucket (rows are distinct, weights are their counts)."""
    n = len(rows[0])
    col: list[dict[str, int]] = [defaultdict(int) for _ in range(n)]
    for r, w in zip(rows, weights, strict=True):
        for i, t in enumerate(r):
            col[i][t] += w
    # initial groups by longest common pattern
    groups: dict[tuple, list[int]] = defaultdict(list)
    for idx, r in enumerate(rows):
        freqs = [col[i][t] for i, t in enumerate(r)]
        fc: dict[int, int] = defaultdict(int)
        for f, t in zip(freqs, r, strict=True):
            if t != VAR:
                fc[f] += 1
        best = max(fc.items(), key=lambda kv: (kv[1], kv[0]))[0] if fc else -1
        pat = tuple(t if (f >= best and t != VAR) else None for f, t in zip(freqs, r, strict=True))
        groups[pat].append(idx)
    out: list[tuple[str, ...]] = [()] * len(rows)
    for pat, members in groups.items():
        _split(rows, weights, pat, members, out)
    return out


def _split(rows, weights, pat, members, out) -> None:
    n = len(pat)
    tmpl = list(pat)
    const_cols = []
    for i in range(n):
        if pat[i] is not None:
            continue
        vals: dict[str, int] = defaultdict(int)
        for m in members:
            vals[rows[m][i]] += weights[m]
        if len(vals) == 1:
            tmpl[i] = next(iter(vals))
        elif len(vals) <= MAX_CONST_VALUES and all(_is_wordlike(v) for v in vals):
            const_cols.append(i)
        elif ENUM_CONSTANTS and len(vals) <= 4 * MAX_CONST_VALUES and all(_ENUM.match(v) for v in vals):
            const_cols.append(i)  # UPPER_CASE values read as enum constants (states, event types)
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
        tm = _group_bucket(rows, [counts[r] for r in rows])
        for r, t in zip(rows, tm, strict=True):
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
