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

# Each entry: (kind, pattern).  Combined into one alternation with named groups.
_PATTERNS: list[tuple[str, str]] = [
    # timestamps ---------------------------------------------------------------------------
    ("TS", r"\d{4}-\d{2}-\d{2}[T _]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"),
    ("TS", _DAY + r",? \d{1,2} " + _MON + r" \d{4} \d{2}:\d{2}:\d{2}(?: [+-]\d{4})?"),
    ("TS", r"(?:" + _DAY + r" )?" + _MON + r" +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)?(?: \d{4})?"),
    ("TS", r"\b[EIWF]\d{3,4} \d{2}:\d{2}:\d{2}(?:\.\d+)?"),  # glog
    ("TS", r"\[ *\+?\d+\.\d+\]"),  # dmesg [6781741.548768] / [  +0.000316]
    ("TS", r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"),
    ("TS", r"\b\d{4}-\d{2}-\d{2}\b"),
    ("TS", r"\b\d{4}/\d{2}/\d{2}\b"),
    # identifiers ------------------------------------------------------------------------------
    ("UUID", r"\b(?:GPU|MIG)-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    ("UUID", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    ("PCI", r"(?:PCI:|(?<!\w)GPU|(?<![\w:]))[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-9a-fA-F])?\b"),
    ("GID", r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){1,7}:?(?:[0-9a-fA-F]{1,4}:?){0,7}[0-9a-fA-F]{1,4}(?:%\w+)?(?![\w:])"),
    ("IP", r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:(?:<\d+>)|(?::\d+))?"),
    ("HEX", r"\b0x[0-9a-fA-F]+\b"),
    # context-keyed numbers ----------------------------------------------------------------------
    ("RANK", r"(?<=\[Rank )\d+|(?<=\[rank)\d+|(?<=\brank)\d+|(?<=\brank )\d+|(?<=\bRank )\d+|(?<=rank: )\d+|(?<=local_rank: )\d+|(?<=\[default)\d+"),
    ("PID", r"(?<=\bpid=)'?\d+'?|(?<=\bpid )\d+|(?<=\bpid: )\d+|(?<=\bPID )\d+|(?<=pid\(s\) )\d+|(?<=\bprocess )\d+"),
    ("SEQ", r"(?<=SeqNum=)\d+|(?<=work: )\d+|(?<=sequence id: )\d+|(?<=work: )\d+"),
    ("NUMEL", r"(?<=NumelIn=)\d+|(?<=NumelOut=)\d+"),
    ("SIZE", r"\b\d+(?:\.\d+)? ?(?:[KMGTP]i?B|bytes)\b"),
    ("DURATION", r"\b\d+(?:\.\d+)? ?(?:ms|us|ns|milliseconds|seconds|secs?|minutes|mins|hours|s)\b"),
    ("DURATION", r"(?<=Timeout\(ms\)=)\d+"),
    # per-run paths: temp dirs, home dirs, environment prefixes up to site-packages
    ("PATH", r"/tmp/[^\s'\"):,]+"),
    ("PATH", r"(?:/[\w.@+-]+)+/(?=(?:site|dist)-packages/)"),
    ("PATH", r"/(?:home|Users|scratch|workspace|workspaces|data|mnt|pfss|gpfswork|lustre)/[^\s'\"):,]+"),
    # everything else numeric
    ("NUM", r"[-+]?\b\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"),
]

_COMBINED = re.compile("|".join(f"(?P<{k}_{i}>{p})" for i, (k, p) in enumerate(_PATTERNS)))
_KIND_OF_GROUP = {f"{k}_{i}": k for i, (k, _) in enumerate(_PATTERNS)}

# NCCL debug prefix "host:pid:tid [dev]" — the host is masked here because it carries no digits
# in general.
_NCCL_PREFIX = re.compile(r"^(?:\S*?<std\w+>:)?([\w.-]+):(\d+):(\d+) \[(\d+)\]", re.M)
_LINE_PREFIX = re.compile(
    r"^(?:\s*\[(?:rank|default)\d+\]:\s?|\s*\[\d+,\d+\]<std\w+>:|\s*\[\d+\]\s(?=\[rank))+"
)
_HOST_CTX = re.compile(
    r"(?<=host      : )\S+|(?<=\bnode: )[\w.-]+|(?<=\bnode )[\w.-]+(?=,)|(?<= ON )\S+(?= CANCELLED)"
    r"|(?<=srun: error: )[\w.-]+(?=:)|(?<=^)[\w.-]+(?= kernel:)|(?<= )[\w.-]+(?= kernel:)"
    r"|(?<=connect to \()[\w.-]+(?=,)"
)


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

    def _host(m: re.Match) -> str:
        if found is not None:
            found.append(("HOST", m.group(0)))
        return "<HOST>"

    text = _HOST_CTX.sub(_host, text)

    def _repl(m: re.Match) -> str:
        kind = _KIND_OF_GROUP[m.lastgroup]
        if found is not None:
            found.append((kind, m.group(0)))
        return f"<{kind}>"

    return _COMBINED.sub(_repl, text)


_SPACES = re.compile(r"[ \t]+")


def mask_line(line: str, found: list | None = None) -> str:
    """Mask one line and normalise its whitespace and launcher prefix."""
    line = strip_line_prefix(line)
    return _SPACES.sub(" ", mask(line, found)).strip()
