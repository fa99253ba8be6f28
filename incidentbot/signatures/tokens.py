"""Tokens of a log line for template mining: variables by shape become ``VAR``.

A token holding a digit (numbers, ids, addresses, times, hex, UUIDs), a path/URL/component name
(``a/b``), a dotted name (``a.b.c``, unless it ends in an UPPER_CASE constant), an empty bracket or
a boolean is a variable by its shape; in ``key=value`` and ``key:value`` parts (also comma lists of
them) only the value is, and a quoted value counts as one token. A word ending in one digit
(``eth0``, ``ssh2``) stays a word: whether it varies is decided from the data by the template
engine (``templates.py``), as is every other word. Dot leaders (``label......0``) separate label
and value; a run of variables counts as one; month/day names and unit words glued to a variable
join it. Linear time: one split and a few anchored patterns per token; lines are cut at 4 KiB.
"""

from __future__ import annotations

import re

__all__ = ["VAR", "tokens", "preprocess"]

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
_LIST_RUN = 3  # numbered names in a row that make a list


_QUOTE_STRIP = "\"'(){}[]<>,;"
_QUOTED = re.compile(r'=("[^"\n]{0,200}"|\'[^\'\n]{0,200}\')')
_LEADER = re.compile(r"(?<=[A-Za-z])\.{3,}(?=\w)")
_SEG = re.compile(r"([,;])")
_KV_PREFIX = re.compile(r"^([A-Za-z_][A-Za-z_-]*(?::[A-Za-z_][A-Za-z_-]*)*?[=:])(?=.)")
_BOOL = frozenset(("true", "false", "True", "False", "TRUE", "FALSE", "null", "None"))


def _is_var_value(v: str) -> bool:
    """A value that is a variable by its shape alone."""
    if v in _EMPTY or v in _BOOL:
        return True  # an empty bracketed value is a missing variable; booleans are values
    if "/" in v and (v[0] == "/" and len(v) > 1 or "://" in v or v.count("/") >= 2 or "." in v):
        return True  # paths, URLs, package/component names
    if v.count(".") >= 2 and _DOTTED.match(v.strip(_QUOTE_STRIP)):
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
    run = 0  # word-digit tokens (eth0, node12) just before this one
    for t in line.split():
        if not t.isalpha() or t in _BOOL:
            t = _tok(t)
            if t is not VAR and _WORD_DIGIT.match(t):
                run += 1
                if run > _LIST_RUN:
                    continue  # the list goes on: it is one variable already
                if run < _LIST_RUN:
                    out.append(t)
                    continue
                # A run of numbered names is a list (the hosts or devices a line enumerates): one
                # variable, whatever its length.
                del out[len(out) - (_LIST_RUN - 1) :]
                t = VAR
            else:
                run = 0
            if t == VAR:
                while out and out[-1] in _DATE_WORDS:
                    out.pop()
                if out and out[-1] == VAR:
                    continue
        else:
            run = 0
            if out and out[-1] == VAR and t in _UNITS:
                continue
        if out and out[-1] == VAR and t.strip(_UNIT_STRIP) in _UNITS:
            continue
        out.append(t)
    return out


def preprocess(line: str) -> str:
    return " ".join(tokens(line))


_DOTTED = re.compile(r"^[A-Za-z][\w-]*(?:\.[A-Za-z][\w-]*){2,}(?<!\.[A-Z][A-Z_])(?<![A-Z_][A-Z_])[.,:;]?$")
