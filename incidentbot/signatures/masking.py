"""Masking of the parts of a failure text that vary per occurrence.

`mask(text)` returns the masked text and the list of ``(kind, original)`` pairs it replaced.
Every pattern is written without nested unbounded quantifiers, so matching is linear in the
input; callers cap the input size anyway (see ``MAX_ANALYSED``).

Placeholders are ``<KIND>`` in upper case: TS, UUID, PCI, IP, GID, HEX, RANK, PID, TID, HOST,
SEQ, NUMEL, SIZE, DURATION, PATH, NUM.  The order of the alternatives below matters: the most
specific shapes (timestamps, PCI ids, IPs) come before the generic number rule.
"""

from __future__ import annotations

import re

__all__ = ["mask", "mask_line", "strip_line_prefix", "MAX_ANALYSED"]

#: Only the first MAX_ANALYSED characters of a text are analysed (documented work cap).
MAX_ANALYSED = 32 * 1024

_MON = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"

# Three passes, each one alternation whose branches all begin with a literal or a small character
# class, so the regex engine can skip most positions quickly (no leading look-behinds).
_H = r"[0-9a-fA-F]"

# 1) timestamps (may span several tokens)
_TS = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T _]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|"
    + _DAY
    + r"(?:,? \d{1,2} "
    + _MON
    + r" \d{4} \d{2}:\d{2}:\d{2}(?: [+-]\d{4})?| "
    + _MON
    + r" +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)?(?: \d{4})?)"
    r"|" + _MON + r" +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)?(?: \d{4})?"
    r"|[EIWF]\d{3,4} \d{2}:\d{2}:\d{2}(?:\.\d+)?"
    r"|\[ *\+?\d+\.\d+\]"
    r"|(?<![\w:.])\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?![\w:])"
    r"|\d{4}/\d{2}/\d{2}"
)
# 2) numbers identified by the key in front of them
_KEYED = re.compile(
    r"(\[Rank |\[rank|\brank|Rank |rank: |local_rank: |\[default"
    r"|pid=|pid |pid: |PID |pid\(s\) |process "
    r"|SeqNum=|work: |sequence id: |NumelIn=|NumelOut=|Timeout\(ms\)=)('?\d+'?)"
)
_KEY_KIND = {
    "[Rank ": "RANK",
    "[rank": "RANK",
    "rank": "RANK",
    "Rank ": "RANK",
    "rank: ": "RANK",
    "local_rank: ": "RANK",
    "[default": "RANK",
    "pid=": "PID",
    "pid ": "PID",
    "pid: ": "PID",
    "PID ": "PID",
    "pid(s) ": "PID",
    "process ": "PID",
    "SeqNum=": "SEQ",
    "work: ": "SEQ",
    "sequence id: ": "SEQ",
    "NumelIn=": "NUMEL",
    "NumelOut=": "NUMEL",
    "Timeout(ms)=": "DURATION",
}
# 3) shapes, applied only to whitespace-separated tokens that hold a digit
_PATTERNS: list[tuple[str, str]] = [
    ("UUID", r"\b(?:GPU-|MIG-)?" + _H + r"{8}-" + _H + r"{4}-" + _H + r"{4}-" + _H + r"{4}-" + _H + r"{12}\b"),
    ("PCI", r"(?:PCI:|GPU|\b)" + _H + r"{4,8}:" + _H + r"{2}:" + _H + r"{2}(?:\." + _H + r")?\b"),
    ("GID", r"(?<![\w:])" + _H + r"{1,4}(?::" + _H + r"{0,4}){2,7}(?:%\w+)?(?![\w:])"),
    ("IP", r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:<\d+>|:\d+)?"),
    ("HEX", r"\b0x" + _H + r"+\b"),
    ("SIZE", r"\b\d+(?:\.\d+)?(?:[KMGTP]i?B|bytes)\b"),
    ("DURATION", r"\b\d+(?:\.\d+)?(?:ms|us|ns|s)\b"),
    ("PATH", r"/tmp/[^\s'\"):,]+"),
    ("PATH", r"/(?:home|Users|scratch|workspace|workspaces|data|mnt|pfss|gpfswork|lustre)/[^\s'\"):,]+"),
    ("NUM", r"(?:(?<=GPU)|(?<![\w.]))\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"),  # not inside names like mlx5, c10d
]
# a number and its unit in two tokens ("304.00 MiB", "1800 seconds")
# (starts only where a digit run starts, possessive: a 4 KiB run of digits is one scan, not n²)
_UNIT2 = re.compile(r"(?<!\d)\d++(?:\.\d++)? (?:[KMGTP]i?B|bytes|ms|milliseconds|seconds|secs?|minutes|mins|hours)\b")
_UNIT2_KIND = {"B": "SIZE", "s": "SIZE"}
_COMBINED = re.compile("|".join(f"(?P<{k}_{i}>{p})" for i, (k, p) in enumerate(_PATTERNS)))
_KIND_OF_GROUP = {f"{k}_{i}": f"<{k}>" for i, (k, _) in enumerate(_PATTERNS)}
_TOKENS = re.compile(r"(\s+)")
_DIGIT = re.compile(r"\d")


_TOKEN_CACHE: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}
_TOKEN_CACHE_MAX = 50_000


def _shape_token(tok: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Masked form of one digit-holding token and what was masked (memoised: tokens repeat)."""
    hit = _TOKEN_CACHE.get(tok)
    if hit is not None:
        return hit
    got: list[tuple[str, str]] = []

    def _repl(m: re.Match) -> str:
        assert m.lastgroup is not None  # every alternative of _COMBINED is a named group
        kind = _KIND_OF_GROUP[m.lastgroup]
        got.append((kind[1:-1], m.group(0)))
        return kind

    res = (_COMBINED.sub(_repl, tok), tuple(got))
    if len(tok) <= 200:
        if len(_TOKEN_CACHE) >= _TOKEN_CACHE_MAX:
            _TOKEN_CACHE.clear()
        _TOKEN_CACHE[tok] = res
    return res


def _shapes(text: str, found: list | None) -> str:
    def _unit(m: re.Match) -> str:
        v = m.group(0)
        kind = "SIZE" if v.endswith(("B", "bytes")) else "DURATION"
        if found is not None:
            found.append((kind, v))
        return f"<{kind}>"

    text = _UNIT2.sub(_unit, text)
    parts = _TOKENS.split(text)
    for i in range(0, len(parts), 2):
        p = parts[i]
        if p and not p.isalpha() and _DIGIT.search(p):
            masked, got = _shape_token(p)
            parts[i] = masked
            if found is not None and got:
                found.extend(got)
    return "".join(parts)


# Starts only at the first slash of a path (the look-behind fails in O(1) inside one) and takes
# whole segments possessively up to the segment before site-/dist-packages: linear in the path.
_SITE = re.compile(r"(?<![\w.@+/-])/(?:(?!(?:site|dist)-packages/)[\w.@+-]++/)++(?=(?:site|dist)-packages/)")

# NCCL debug prefix "host:pid:tid [dev]" — the host is masked here because it carries no digits
# in general.
_NCCL_PREFIX = re.compile(r"^(?:\S*?<std\w+>:)?([\w.-]+):(\d+):(\d+) \[(\d+)\]", re.M)
_LINE_PREFIX = re.compile(r"^(?:\s*\[(?:rank|default)\d+\]:\s?|\s*\[\d+,\d+\]<std\w+>:|\s*\[\d+\]\s(?=\[rank))+")
_HOST_CTX = re.compile(r"(host      : |\bnode: | ON |srun: error: |connect to \()([\w.-]+)(?=[,: ]|$)", re.M)
_KERNEL_HOST = re.compile(r"(?<![\w.-])([\w.-]+)(?= kernel:)")


def _hosts(text: str, found: list | None) -> str:
    def _h(m: re.Match) -> str:
        if found is not None:
            found.append(("HOST", m.group(2)))
        return m.group(1) + "<HOST>"

    text = _HOST_CTX.sub(_h, text)
    if " kernel:" in text:

        def _k(m: re.Match) -> str:
            if m.group(1) == "<HOST>" or m.group(1).startswith("<"):
                return m.group(1)
            if found is not None:
                found.append(("HOST", m.group(1)))
            return "<HOST>"

        text = _KERNEL_HOST.sub(_k, text)
    return text


def strip_line_prefix(line: str) -> str:
    """Remove per-rank line prefixes added by launchers ('[rank3]:', '[default7]:', '[1,2]<stdout>:')."""
    return _LINE_PREFIX.sub("", line, count=1)


def mask(text: str, found: list | None = None) -> str:
    """Replace variable parts with placeholders; append (kind, original) to *found* if given."""
    if "NCCL" in text:

        def _nccl(m: re.Match) -> str:
            if found is not None:
                found.append(("HOST", m.group(1)))
                found.append(("PID", m.group(2)))
                found.append(("TID", m.group(3)))
            return "<HOST>:<PID>:<TID> [<DEV>]"

        text = _NCCL_PREFIX.sub(_nccl, text)

    if found is None:
        text = _hosts(text, None)
        text = _TS.sub("<TS>", text)
        text = _KEYED.sub(lambda m: m.group(1) + "<" + _KEY_KIND[m.group(1)] + ">", text)
        if "-packages/" in text:
            text = _SITE.sub("<PATH>/", text)
        return _shapes(text, None)

    def _ts(m: re.Match) -> str:
        found.append(("TS", m.group(0)))
        return "<TS>"

    def _keyed(m: re.Match) -> str:
        kind = _KEY_KIND[m.group(1)]
        found.append((kind, m.group(2)))
        return m.group(1) + "<" + kind + ">"

    def _site(m: re.Match) -> str:
        found.append(("PATH", m.group(0)))
        return "<PATH>/"

    text = _hosts(text, found)
    text = _TS.sub(_ts, text)
    text = _KEYED.sub(_keyed, text)
    if "-packages/" in text:
        text = _SITE.sub(_site, text)
    return _shapes(text, found)


_SPACES = re.compile(r"[ \t]+")


def mask_line(line: str, found: list | None = None) -> str:
    """Mask one line and normalise its whitespace and launcher prefix."""
    line = strip_line_prefix(line)
    return _SPACES.sub(" ", mask(line, found)).strip()
