"""Plain log text → failure records (pure: lines in, records out; no I/O).

What it reads, each line's prefix peeled in turn (each peel is an anchored regex run on the first
``_PREFIX_WINDOW`` characters only, so a line costs the same however it is crafted):

- torchrun's ``--tee`` prefix ``[default3]:`` (a *local* rank) and PyTorch's ``[rank3]:`` (the rank);
- ``srun --label``'s ``  3: `` (the task's rank);
- syslog (``Jan 20 10:00:00 host prog[pid]:``) and ``journalctl -o short-iso``
  (``2025-01-20T10:00:00+0000 host prog[pid]:``); ``journalctl -o json`` entries come in through
  :meth:`LogParser.feed_journal`;
- kernel ``dmesg``: ``[ 1234.567890]`` (seconds since boot: kept, not a time) and ``dmesg -T``'s
  ``[Mon Jan 20 10:00:00 2025]``;
- NCCL: ``host:pid:tid [cudaDev] NCCL WARN …`` (the bracket is the CUDA device, so it is the GPU,
  not the rank);
- glog as c10 and torch.distributed print it: ``E0120 10:00:00.123456 1234 file.py:12]`` and
  ``[E120 10:00:00.123456789 ProcessGroupNCCL.cpp:616]``;
- Python ``logging`` with an ISO time, and torchelastic's older ``[2025-01-20 10:00:00,123] name: [WARNING]``;
- SLURM's own lines (``slurmstepd: error: *** JOB 12 ON node7 CANCELLED …``, ``srun: error: node7: task 3: …``).

Lines are assembled into records per *stream* (the rank prefixes), so ranks that interleave their
tracebacks still give one record each: a Python traceback with its chained causes, torchrun's
``ChildFailedError`` summary box, a C++ ``terminate called after throwing`` with its frames, and
indented continuation lines. A record is bounded (``max_lines`` kept as head and tail, the middle
cut and said so). Each record is classified by rules kept as data (:data:`KIND_RULES`): a kind
when it looks like a failure, ``None`` when it does not (INFO chatter), so the caller can count
what it skipped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "LogRecord",
    "LogParser",
    "parse_text",
    "classify",
    "KIND_RULES",
    "looks_like_jsonl",
    "to_event",
    "record_event_id",
    "with_defaults",
]

_PREFIX_WINDOW = 320
MAX_LINE_CHARS = 8 * 1024  # a longer line is cut (the shell cuts before decoding, this is the parser's own bound)
MAX_RECORD_CHARS = 48 * 1024  # under the event schema's 64 KiB message limit, with room for the marker
_MONTHS = {
    m: i for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)
}
_LEVELS = {
    "I": "info",
    "W": "warning",
    "E": "error",
    "F": "fatal",
    "D": "debug",
    "INFO": "info",
    "DEBUG": "debug",
    "TRACE": "debug",
    "WARN": "warning",
    "WARNING": "warning",
    "ERROR": "error",
    "ERR": "error",
    "CRITICAL": "fatal",
    "CRIT": "fatal",
    "FATAL": "fatal",
    "NOTICE": "info",
}
# journald / syslog priorities: 0 emerg .. 7 debug
_PRIORITY_LEVEL = {0: "fatal", 1: "fatal", 2: "fatal", 3: "error", 4: "warning", 5: "info", 6: "info", 7: "debug"}


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One assembled record. ``offsets`` are the byte offsets of the lines it consumed (the
    follow mode's state needs exactly which lines are done)."""

    text: str
    line: int
    start: int
    end: int
    format: str
    kind: str | None
    why: str
    time: datetime | None = None
    host: str | None = None
    rank: int | None = None
    local_rank: int | None = None
    pid: int | None = None
    gpu: str | None = None
    job_id: str | None = None
    level: str | None = None
    cut_lines: int = 0
    offsets: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Meta:
    format: str = "text"
    time: datetime | None = None
    host: str | None = None
    rank: int | None = None
    local_rank: int | None = None
    pid: int | None = None
    gpu: str | None = None
    job_id: str | None = None
    level: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def fill(self, other: _Meta) -> None:
        for name in ("time", "host", "rank", "local_rank", "pid", "gpu", "job_id", "level"):
            if getattr(self, name) is None and getattr(other, name) is not None:
                setattr(self, name, getattr(other, name))
        if self.format == "text" and other.format != "text":
            self.format = other.format


def _int(s: str | None) -> int | None:
    return int(s) if s is not None and s.isdigit() and len(s) < 19 else None


def _iso(s: str) -> datetime | None:
    s = s.replace(",", ".")
    if re.search(r"[+-]\d{4}$", s):
        s = s[:-2] + ":" + s[-2:]
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    # A log time without an offset is read as UTC (documented in the README).
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _dated(year: int | None, month: int, day: int, hms: str) -> datetime | None:
    if year is None:
        return None
    try:
        h, m, s = hms.split(":")
        sec = float(s)
        return datetime(year, month, day, int(h), int(m), int(sec), int(round((sec % 1) * 1e6)) % 1000000, tzinfo=UTC)
    except ValueError:
        return None


# -- prefixes: (name, regex); each match's groups fill the line's metadata ------------------------

_P_DEFAULT = re.compile(r"\[default(\d+)\]:")
_P_RANK = re.compile(r"\[rank(\d+)\]: ?")
_P_SRUN_LABEL = re.compile(r" {0,6}(\d{1,6}): ")
_P_SYSLOG_ISO = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?) (\S{1,255}) ([^\s:\[\]]{1,64})(?:\[(\d{1,10})\])?: "
)
_P_SYSLOG = re.compile(
    r"([A-Z][a-z]{2}) ([ \d]\d) (\d\d:\d\d:\d\d) (\S{1,255}) ([^\s:\[\]]{1,64})(?:\[(\d{1,10})\])?: "
)
_P_DMESG = re.compile(r"\[ {0,12}(\d{1,12}\.\d{1,9})\] ?")
_P_DMESG_T = re.compile(r"\[[A-Z][a-z]{2} ([A-Z][a-z]{2}) ([ \d]\d) (\d\d:\d\d:\d\d) (\d{4})\] ?")
_P_NCCL = re.compile(r"([\w.-]{1,255}):(\d{1,10}):(\d{1,10}) \[(\d{1,4})\] NCCL (INFO|WARN|ERROR|TRACE|ABORT) ")
_P_GLOG = re.compile(r"([IWEF])(\d{1,2})(\d\d) (\d\d:\d\d:\d\d\.\d{1,9}) {1,8}(\d{1,10}) [^\]\s]{1,200}\] ?")
_P_C10 = re.compile(r"\[([IWEF])(\d{1,2})(\d\d) (\d\d:\d\d:\d\d\.\d{1,9})(?: (\d{1,10}))? [^\]\s]{1,200}\] ?")
_P_PYLOG_BRACKET = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d{1,6})?)\] [\w.]{1,200}: \[([A-Z]{4,8})\] ")
_P_ISO_LEVEL = re.compile(
    r"\[?(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)\]?[ |:-]{0,4}"
    r"(?:\[?(DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|CRITICAL|FATAL)\]?[ :|-]{0,4})?"
)
_P_SLURM = re.compile(r"(slurmstepd|srun|sbatch|salloc|slurmd)(?:-[\w.-]{1,200})?: (?:(error|warning|fatal): )?")
_SLURM_JOB = re.compile(r"\*\*\* (?:JOB|STEP) (\d+)(?:\.\w+)? ON (\S+) CANCELLED AT (\S+)")
_SLURM_TASK = re.compile(r"([\w.-]+): tasks? (\d+)(?:-\d+)?: ")
_SLURM_STEPID = re.compile(r"StepId=(\d+)")


def _peel(line: str, *, year: int | None, meta: _Meta) -> tuple[str, str]:
    """Remove the prefixes a line carries, filling ``meta``; returns (stream key, body)."""
    stream = ""
    body = line
    for _ in range(8):
        head = body[:_PREFIX_WINDOW]
        if m := _P_DEFAULT.match(head):
            meta.local_rank = int(m[1])
            stream += f"d{m[1]}/"
        elif m := _P_RANK.match(head):
            meta.rank = int(m[1])
            stream += f"r{m[1]}/"
        elif (m := _P_ISO_LEVEL.match(head)) and m[2]:
            meta.format, meta.time, meta.level = "pylog", meta.time or _iso(m[1]), _LEVELS.get(m[2])
        elif m := _P_SYSLOG_ISO.match(head):
            meta.format, meta.time, meta.host, meta.pid = "syslog", meta.time or _iso(m[1]), m[2], _int(m[4])
            meta.extra["program"] = m[3]
            stream += f"p{m[3]}/"
        elif m := _P_SYSLOG.match(head):
            meta.format, meta.host, meta.pid = "syslog", m[4], _int(m[6])
            meta.time = meta.time or _dated(year, _MONTHS.get(m[1], 1), int(m[2]), m[3])
            meta.extra["program"] = m[5]
            stream += f"p{m[5]}/"
        elif m := _P_DMESG_T.match(head):
            meta.format = "dmesg"
            meta.time = meta.time or _dated(int(m[4]), _MONTHS.get(m[1], 1), int(m[2]), m[3])
        elif m := _P_DMESG.match(head):
            meta.format = "dmesg"
            meta.extra["uptime_s"] = float(m[1])
        elif m := _P_NCCL.match(head):
            meta.format, meta.host, meta.pid, meta.gpu = "nccl", m[1], _int(m[2]), m[4]
            meta.level = _LEVELS.get(m[5], "error")
            stream += f"n{m[2]}/"
            return stream, "NCCL " + m[5] + " " + body[m.end() :]
        elif (m := _P_GLOG.match(head)) or (m := _P_C10.match(head)):
            meta.format = "glog" if meta.format == "text" else meta.format
            meta.level = _LEVELS[m[1]]
            meta.time = meta.time or _dated(year, int(m[2]), int(m[3]), m[4][:15])
            if m[5]:
                meta.pid = meta.pid or _int(m[5])
        elif m := _P_PYLOG_BRACKET.match(head):
            meta.format, meta.time, meta.level = "pylog", _iso(m[1]), _LEVELS.get(m[2])
        elif meta.format == "text" and meta.time is None and (m := _P_ISO_LEVEL.match(head)):
            meta.time = _iso(m[1])
        elif m := _P_SLURM.match(head):
            meta.format = "slurm"
            meta.extra["program"] = m[1]
            if m[2]:
                meta.level = _LEVELS[m[2].upper()]
            rest = body[m.end() : m.end() + _PREFIX_WINDOW]
            if j := _SLURM_JOB.search(rest):
                meta.job_id, meta.host, meta.time = j[1], j[2], meta.time or _iso(j[3])
            elif t := _SLURM_TASK.match(rest):
                meta.host, meta.rank = t[1], _int(t[2])
            elif s := _SLURM_STEPID.search(rest):
                meta.job_id = s[1]
            return stream, body
        elif not stream and meta.format == "text" and (m := _P_SRUN_LABEL.match(head)):
            meta.rank = int(m[1])
            stream += f"s{m[1]}/"
        else:
            break
        body = body[m.end() :]
    return stream, body


# -- classification: rules as data, first match wins ------------------------------------------

# (kind, pattern, strong): a strong rule applies at any level; a weak one (generic words) not on
# records logged at info/debug level, where "error" is usually a counter or a setting's name.
KIND_RULES: list[tuple[str, re.Pattern[str], bool]] = [
    ("hardware", re.compile(r"\bNVRM: Xid\b|\bXid \(PCI:|\bsXid\b|\bXid \d+\b"), True),
    (
        "oom",
        re.compile(
            r"OutOfMemoryError|out of memory|\boom[-_]kill|Out of memory: Killed process|OOM Killed|oom-killer", re.I
        ),
        True,
    ),
    (
        "crash",
        re.compile(
            r"^Traceback \(most recent call last\):|ChildFailedError|terminate called after throwing|"
            r"Segmentation fault|\bsegfault\b|core dumped|SIGSEGV|SIGABRT|Fatal Python error|"
            r"exitcode: -?[1-9]|exited with exit code [1-9]|Exited with exit code [1-9]|"
            r"kernel BUG|Kernel panic|general protection fault",
            re.M,
        ),
        True,
    ),
    (
        "hang",
        re.compile(
            r"\bWatchdog caught collective operation timeout|\bwatchdog\b.{0,80}\b(timeout|timed out|hang)|"
            r"\bhung_task|blocked for more than \d+ seconds|\bNCCL (WARN|ERROR)\b.{0,200}\btimeout",
            re.I,
        ),
        True,
    ),
    (
        "nccl",
        re.compile(
            r"^NCCL (WARN|ERROR|ABORT)\b|\bncclInternalError|\bncclSystemError|\bncclUnhandledCudaError|\bncclRemoteError",
            re.M,
        ),
        True,
    ),
    (
        "hardware",
        re.compile(
            r"\bmce: \[Hardware Error\]|\bEDAC\b.{0,40}\berror|\bPCIe Bus Error|\bAER: .{0,40}error|"
            r"\blink (is )?down\b|\bibv_\w+ failed|fallen off the bus|Cable unplugged",
            re.I,
        ),
        True,
    ),
    ("nan", re.compile(r"\bloss\b.{0,40}\bnan\b|\bnan\b.{0,20}\bloss\b|non-finite loss", re.I), True),
    ("slurm", re.compile(r"\*\*\* (JOB|STEP) \d+.{0,300}CANCELLED|DUE TO (TIME LIMIT|NODE FAILURE|PREEMPTION)"), True),
    ("warning", re.compile(r"\b\w*Warning: "), False),
    ("error", re.compile(r"^[\w.]*(Error|Exception)\b:", re.M), False),  # a Python exception line on its own
    (
        "error",
        re.compile(
            r"\b(errors?|exceptions?|failed|failure|fatal|panic|abort(ed)?|killed|cancell?ed|unreachable)\b", re.I
        ),
        False,
    ),
    ("warning", re.compile(r"\bwarn(ing)?\b", re.I), False),
]
# Text that looks like a failure but says the opposite; removed before the weak rules run.
NEGATIONS = re.compile(
    r"\b(no|0|zero|without) (errors?|failures?|exceptions?)\b|\berrors?(_count)?[=:] ?0\b|"
    r"\bfailed[=:] ?0\b|\b0 failed\b",
    re.I,
)
# Warnings that every torchrun prints: not failures (kept as data so a reader sees the list).
BENIGN = re.compile(r"Setting OMP_NUM_THREADS environment variable for each process|^\**$")
_LEVEL_KIND = {"error": "error", "fatal": "error", "warning": "warning"}


def _flags(rule: re.Pattern[str]) -> str:
    return "".join(c for c, f in (("i", re.I), ("m", re.M)) if rule.flags & f)


def _one_pattern(rules: list[tuple[str, re.Pattern[str], bool]]) -> re.Pattern[str]:
    """The rules as one alternation (one scan of the text instead of one per rule); the group that
    matched says which rule, and leftmost-first order keeps "first rule wins" for a given position."""
    return re.compile(
        "|".join(f"(?P<r{i}>(?{_flags(rule) or '-i'}:{rule.pattern}))" for i, (_, rule, _) in enumerate(rules))
    )


_STRONG = [r for r in KIND_RULES if r[2]]
_WEAK = [r for r in KIND_RULES if not r[2]]
_STRONG_ONE = _one_pattern(_STRONG)
_WEAK_ONE = _one_pattern(_WEAK)


def _first_rule(one: re.Pattern[str], rules: list[tuple[str, re.Pattern[str], bool]], text: str) -> str | None:
    """The kind of the earliest rule in the list that matches anywhere (the list order is the priority)."""
    m = one.search(text)
    if m is None:
        return None
    best = int(m.lastgroup[1:]) if m.lastgroup else len(rules)
    # Only rules earlier in the list than the one found can still win; they are few and rarely run.
    for i in range(best):
        if rules[i][1].search(text):
            return rules[i][0]
    return rules[best][0]


def classify(text: str, *, level: str | None = None) -> tuple[str | None, str]:
    """(kind, why) for a record's text, kind None when it is not a failure."""
    head = text[:4096] + ("\n" + text[-2048:] if len(text) > 6144 else "")
    kind = _first_rule(_STRONG_ONE, _STRONG, head)
    if kind is not None:
        return kind, f"matches the {kind} rule"
    if BENIGN.search(head.strip()):
        return None, "a known benign message"
    if level in ("info", "debug"):
        return None, f"logged at {level} level"
    if level in _LEVEL_KIND:
        return _LEVEL_KIND[level], f"logged at {level} level"
    kind = _first_rule(_WEAK_ONE, _WEAK, NEGATIONS.sub(" ", head))
    if kind is not None:
        return kind, f"has {kind} words"
    return None, "no failure words"


# -- assembly ---------------------------------------------------------------------------------

_TRACEBACK = "Traceback (most recent call last):"
_CHAINS = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
_RULE = re.compile(r"^={20,}\s*$")
# Non-indented lines known to continue the record before them (CUDA's and c10's messages).
_CONTINUATIONS = (
    "CUDA kernel errors might be asynchronously reported",
    "For debugging consider passing CUDA_LAUNCH_BLOCKING",
    "Compile with `TORCH_USE_CUDA_DSA`",
    "Exception raised from ",
    "frame #",
    "what():",
    "Device-side assertion",
    "Search for `cudaErrorLaunchFailure'",
)


@dataclass(slots=True)
class _Pending:
    mode: str  # traceback | box | cpp | plain
    state: str
    meta: _Meta
    line: int
    start: int
    end: int
    head: list[str]
    tail: deque
    cut: int = 0
    total: int = 1
    chars: int = 0
    blank_run: int = 0
    offsets: list[int] = field(default_factory=list)

    def add(self, body: str, offset: int, end: int, max_lines: int) -> None:
        self.total += 1
        self.end = end
        self.offsets.append(offset)
        if len(self.head) < max_lines // 4:
            self.head.append(body)
            return
        if len(self.tail) == self.tail.maxlen:
            self.cut += 1
        self.tail.append(body)


def _continues(body: str) -> bool:
    return (body[:1] in (" ", "\t") and body.strip() != "") or body.lstrip().startswith(_CONTINUATIONS)


class LogParser:
    """Incremental: ``feed`` lines (with their byte offsets), take the records it returns,
    ``flush`` at the end (or when a followed file has been quiet). Linear in the input."""

    def __init__(self, *, year: int | None = None, max_lines: int = 400, max_total_lines: int = 20000):
        self.year = year
        self.max_lines = max_lines
        self.max_total_lines = max_total_lines
        self._open: dict[str, _Pending] = {}

    def pending_start(self) -> int | None:
        """The smallest offset of a line an unfinished record holds (what a restart must re-read)."""
        return min((p.start for p in self._open.values()), default=None)

    def feed(self, line: str, *, offset: int = 0, end: int | None = None, lineno: int = 0) -> list[LogRecord]:
        line = line.rstrip("\r\n")
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + f" [line cut at {MAX_LINE_CHARS} characters]"
        meta = _Meta()
        stream, body = _peel(line, year=self.year, meta=meta)
        return self._take(stream, body, meta, offset, offset + len(line) + 1 if end is None else end, lineno)

    def feed_journal(self, entry: dict, *, offset: int = 0, end: int | None = None, lineno: int = 0) -> list[LogRecord]:
        """One ``journalctl -o json`` entry (its MESSAGE may itself carry a kernel or NCCL prefix)."""
        message = entry.get("MESSAGE")
        if isinstance(message, list):  # journald gives non-UTF-8 messages as a byte array
            message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
        message = str(message or "")[:MAX_LINE_CHARS]
        meta = _Meta(format="journal")
        stream, body = _peel(message, year=None, meta=meta)
        meta.format = "journal" if meta.format in ("text", "glog", "pylog") else meta.format
        ts = str(entry.get("__REALTIME_TIMESTAMP", ""))
        if ts.isdigit():
            meta.time = datetime.fromtimestamp(int(ts) / 1e6, tz=UTC)
        meta.host = str(entry["_HOSTNAME"]) if entry.get("_HOSTNAME") else meta.host
        meta.pid = _int(str(entry.get("_PID", ""))) or meta.pid
        prio = _int(str(entry.get("PRIORITY", "")))
        if prio is not None and meta.level is None:
            meta.level = _PRIORITY_LEVEL.get(prio)
        ident = entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM")
        if ident:
            meta.extra["program"] = str(ident)[:64]
        stream = f"j{meta.pid}/{stream}"
        return self._take(stream, body, meta, offset, offset + 1 if end is None else end, lineno)

    def flush(self) -> list[LogRecord]:
        out = [self._close(p) for p in self._open.values()]
        self._open.clear()
        return sorted(out, key=lambda r: r.start)

    # The state machine of one stream: decide whether ``body`` continues the open record.
    def _take(self, stream: str, body: str, meta: _Meta, offset: int, end: int, lineno: int) -> list[LogRecord]:
        out: list[LogRecord] = []
        p = self._open.get(stream)
        if p is not None:
            if p.total >= self.max_total_lines:
                out.append(self._close(self._open.pop(stream)))
            elif self._continue(p, body):
                p.add(body, offset, end, self.max_lines)
                p.meta.fill(meta)
                if p.mode == "box" and p.state == "done" or p.mode == "traceback" and p.state == "done":
                    out.append(self._close(self._open.pop(stream)))
                return out
            else:
                out.append(self._close(self._open.pop(stream)))
        if not body.strip():
            return out  # a blank line outside a record is nothing
        stripped = body.strip()
        if stripped == _TRACEBACK:
            mode, state = "traceback", "frames"
        elif _RULE.match(stripped):
            mode, state = "box", "head"
        elif stripped.startswith("terminate called after throwing"):
            mode, state = "cpp", ""
        else:
            mode, state = "plain", ""
        self._open[stream] = _Pending(
            mode,
            state,
            meta,
            lineno,
            offset,
            end,
            [body],
            deque(maxlen=self.max_lines - self.max_lines // 4),
            offsets=[offset],
        )
        return out

    def _continue(self, p: _Pending, body: str) -> bool:
        stripped = body.strip()
        if p.mode == "traceback":
            if p.state == "frames":
                if body[:1] in (" ", "\t") and stripped:
                    return True
                if not stripped:
                    return False
                p.state = "exception"  # the exception line ends the frames
                return True
            if p.state == "box":
                if _RULE.match(stripped):
                    p.state = "done"
                return True
            if stripped in _CHAINS:
                p.state = "chain"
                return True
            if p.state == "chain":
                if stripped == _TRACEBACK:
                    p.state = "frames"
                    return True
                return not stripped
            # after the exception line: blank lines may lead to a chained cause or nothing
            if not stripped:
                p.blank_run += 1
                return p.blank_run <= 2
            if _RULE.match(stripped):  # ChildFailedError's message is torchrun's summary box
                p.state = "box"
                return True
            if p.blank_run == 0 and _continues(body):
                return True
            return False
        if p.mode == "box":
            if p.state == "head":
                if stripped.endswith("FAILED"):
                    p.state = "body"
                    return True
                p.mode = "plain"  # a ruler that is not torchrun's box
                return False
            if _RULE.match(stripped):
                p.state = "done"
            return True
        if not stripped:
            return False
        if p.mode == "cpp" and not body.startswith("terminate called"):
            return _continues(body) or stripped.startswith(("what()", "Exception raised from", "frame #"))
        return _continues(body)

    def _close(self, p: _Pending) -> LogRecord:
        lines = (
            p.head
            + ([f"[... {p.cut} lines cut: the record was longer than {self.max_lines} lines ...]"] if p.cut else [])
            + list(p.tail)
        )
        while lines and not lines[-1].strip():
            lines.pop()
        text = "\n".join(lines)
        cut = p.cut
        if len(text) > MAX_RECORD_CHARS:
            keep = MAX_RECORD_CHARS // 2
            cut_chars = len(text) - 2 * keep
            text = text[:keep] + f"\n[... {cut_chars} characters cut ...]\n" + text[-keep:]
            cut = cut or 1
        kind: str | None
        if p.mode == "traceback":
            kind, why = "crash", "a Python traceback"
        elif p.mode == "box" and p.state in ("body", "done"):
            kind, why = "crash", "torchrun's failure summary"
        elif p.mode == "cpp":
            kind, why = "crash", "a C++ exception that terminated the process"
        else:
            kind, why = classify(text, level=p.meta.level)
        m = p.meta
        return LogRecord(
            text=text,
            line=p.line,
            start=p.start,
            end=p.end,
            format=m.format,
            kind=kind,
            why=why,
            time=m.time,
            host=m.host,
            rank=m.rank,
            local_rank=m.local_rank,
            pid=m.pid,
            gpu=m.gpu,
            job_id=m.job_id,
            level=m.level,
            cut_lines=cut,
            offsets=tuple(p.offsets),
            extra=dict(m.extra),
        )


def parse_text(text: str, *, year: int | None = None, max_lines: int = 400) -> list[LogRecord]:
    """All records of a whole text (tests and one-shot use); offsets are UTF-8 byte offsets."""
    parser = LogParser(year=year, max_lines=max_lines)
    out: list[LogRecord] = []
    offset = 0
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        size = len(line.encode("utf-8", "surrogateescape"))
        out.extend(parser.feed(line, offset=offset, end=offset + size, lineno=n))
        offset += size
    out.extend(parser.flush())
    return sorted(out, key=lambda r: r.start)


def looks_like_jsonl(first_line: str) -> bool:
    """A file is JSON lines when its first non-blank line is a JSON object (decided per file)."""
    s = first_line.strip()
    if not s.startswith("{"):
        return False
    try:
        return isinstance(json.loads(s), dict)
    except (ValueError, RecursionError):
        return False


def with_defaults(record: LogRecord, **values: Any) -> LogRecord:
    """The record with ``values`` filled where the text gave nothing."""
    return replace(record, **{k: v for k, v in values.items() if getattr(record, k) is None and v is not None})


def record_event_id(record: LogRecord, *, identity: str) -> str:
    """Stable across re-reads: the file's identity, where the record starts and what it says."""
    digest = hashlib.sha256(
        f"{identity}|{record.start}|".encode() + record.text.encode("utf-8", "surrogateescape")
    ).hexdigest()
    return f"lf:{digest[:40]}"


def to_event(
    record: LogRecord,
    *,
    identity: str,
    job_id: str,
    host: str | None = None,
    rank: int | None = None,
    source: str | None = None,
) -> dict:
    """A failure record → an event of the API's schema. The text's own job, host and rank win;
    the arguments (the command's flags) fill what it lacks."""
    event: dict[str, Any] = {
        "event_id": record_event_id(record, identity=identity),
        "job_id": record.job_id or job_id,
        "message": record.text,
        "kind": record.kind,
    }
    if record.time is not None:
        event["time"] = record.time.isoformat()
    for name, value in (
        ("host", record.host or host),
        ("rank", record.rank if record.rank is not None else rank),
        ("gpu", record.gpu),
    ):
        if value is not None:
            event[name] = value
    attributes: dict[str, Any] = {
        "source": "logfile",
        "format": record.format,
        "line": record.line,
        "offset": record.start,
    }
    if source:
        attributes["file"] = source
    for name in ("local_rank", "pid", "level"):
        if getattr(record, name) is not None:
            attributes[name] = getattr(record, name)
    if record.cut_lines:
        attributes["cut_lines"] = record.cut_lines
    attributes.update(record.extra)
    event["attributes"] = attributes
    return event
