"""Rule engine: parse first, mask second, then hash.

Rules are tried in a fixed order (``RULES``); the first whose detector matches the text claims it.
The order encodes precedence between overlapping symptoms, e.g. an illegal memory access
reported from inside the NCCL watchdog is ``cuda_runtime``, an NCCL error whose last error is an
InfiniBand completion is ``nccl_error``, and a raw NET/IB completion warning is
``infiniband_rdma``.  Text no rule claims falls through to a Python traceback parser and finally
to the generic template (``other``).

Work cap: only the first ``MAX_ANALYSED`` characters (32 Ki) are analysed; lines are cut at 4 Ki
characters for masking.  Nothing here raises on any ``str`` input.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .masking import MAX_ANALYSED, mask_line, strip_line_prefix
from .xid import SEVERITY_RANK, xid_info

RULES_VERSION = "2026.12-4"
MAX_LINE = 4096
MAX_TEMPLATE_LINES = 12


class Ctx:
    """Per-text parsing context; masked lines are computed lazily and recorded in ``found``."""

    __slots__ = ("text", "found", "reasons", "_lines", "_masked")

    def __init__(self, text: str, record: bool) -> None:
        self.text = text
        self.found: list | None = [] if record else None
        self.reasons: list[str] = []
        self._lines: list[str] | None = None
        self._masked: dict[int | str, str] = {}  # by line number, and by raw line when nothing is recorded

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = [ln[:MAX_LINE] for ln in self.text.splitlines() if ln.strip()]
        return self._lines

    def masked(self, i: int) -> str:
        m = self._masked.get(i)
        if m is None:
            line = self.lines[i]
            if self.found is None:  # identical raw lines mask identically
                m = self._masked.get(line)
                if m is None:
                    m = mask_line(line, None)
                    self._masked[line] = m
            else:
                m = mask_line(line, self.found)
            self._masked[i] = m
        return m

    def matching(self, rx: re.Pattern, limit: int = MAX_TEMPLATE_LINES) -> list[str]:
        """Masked lines that match *rx*, duplicates folded, first-seen order."""
        out: list[str] = []
        seen: set[str] = set()
        hits = 0
        for i, ln in enumerate(self.lines):
            if rx.search(ln):
                hits += 1
                m = self.masked(i)
                if m not in seen:
                    seen.add(m)
                    if len(out) < limit:
                        out.append(m)
        if hits > len(seen) and hits > 1:
            self.reasons.append(f"{hits} matching lines folded into {len(seen)} after masking")
        return out

    def all_masked(self, limit: int = MAX_TEMPLATE_LINES) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()
        for i in range(len(self.lines)):
            m = self.masked(i)
            if m not in seen:
                seen.add(m)
                out.append(m)
                if len(out) >= limit:
                    break
        n = len(self.lines)
        if n > len(seen) and n > 1 and len(out) < limit:
            self.reasons.append(f"{n} lines folded into {len(seen)} after masking")
        return out


@dataclass(slots=True)
class Parsed:
    title: str
    template_lines: list[str]
    cause_class: str
    details: list[tuple[str, str]]
    key_parts: tuple[str, ...]  # what the parser claims: identifies the failure mode within its category
    # Text lines the parser does not interpret: the template engine decides which of their tokens
    # vary (``templates.py``); they are part of the key only through the template learned.
    free: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# helpers

_SIGNALS = {
    "1": "SIGHUP",
    "2": "SIGINT",
    "4": "SIGILL",
    "6": "SIGABRT",
    "7": "SIGBUS",
    "8": "SIGFPE",
    "9": "SIGKILL",
    "11": "SIGSEGV",
    "13": "SIGPIPE",
    "15": "SIGTERM",
}


def first_kind(kinds, text: str):
    """The first entry of ``kinds`` (tuples whose second item is a pattern) that matches ``text``, or None."""
    for entry in kinds:
        if entry[1].search(text):
            return entry
    return None


def _first(rx: re.Pattern, text: str, group: int = 1) -> str | None:
    m = rx.search(text)
    return m.group(group) if m else None


def _short(s: str, n: int = 90) -> str:
    s = s.strip()
    return s if len(s) <= n else s[: n - 1] + "…"


def _generic(ctx: Ctx, rx: re.Pattern, title: str, cause: str, kind: str | None = None) -> Parsed:
    lines = ctx.matching(rx)
    details = [("kind", kind)] if kind else []
    return Parsed(title, lines, cause, details, (kind or "",), tuple(lines[:4]))


# --------------------------------------------------------------------------------------------
# parsers (each returns Parsed)

_XID = re.compile(r"\b(S?Xid) \(([^)\n]{0,40})\): (\d+)")


def p_xid(ctx: Ctx) -> Parsed:
    codes: list[tuple[str, int]] = []
    for m in _XID.finditer(ctx.text):
        codes.append((m.group(1), int(m.group(3))))
    gpu = [c for k, c in codes if k == "Xid"]
    distinct = list(dict.fromkeys(gpu))
    if distinct:
        best = distinct[0]
        for c in distinct[1:]:
            if SEVERITY_RANK.get(xid_info(c).severity, 0) > SEVERITY_RANK.get(xid_info(best).severity, 0):
                best = c
        info = xid_info(best)
        title = f"Xid {best}: {info.meaning}"
        cause, sev, mn = info.cause_class, info.severity, info.mnemonic
        label = "xid"
    else:
        sx = list(dict.fromkeys(c for k, c in codes if k == "SXid"))
        best = sx[0] if sx else 0
        distinct = sx
        title = f"NVSwitch SXid {best}"
        cause, sev, mn = "hardware", "high", "NVSWITCH"
        label = "sxid"
    others = [str(c) for c in distinct if c != best]
    ctx.reasons.append(
        f"matched NVIDIA {label} lines: codes {', '.join(str(c) for c in distinct)}; primary {best} ({sev}) decides"
    )
    tl = ctx.matching(_XID)
    details = [(label, str(best)), ("mnemonic", mn), ("severity", sev)]
    if others:
        details.append(("other_codes", ",".join(others)))
    return Parsed(title, tl, cause, details, (label, str(best)))


_OOM_TRIED = re.compile(r"Tried to allocate")


def p_cuda_oom(ctx: Ctx) -> Parsed:
    lines = ctx.matching(_CUDA_OOM)
    ctx.reasons.append("matched CUDA out-of-memory wording (all historical wordings are one failure mode)")
    return Parsed("CUDA out of memory", lines, "software", [("error", "cuda_oom")], ("cuda_oom",))


_CUDA_KINDS: list[tuple[str, re.Pattern, str, str]] = [
    (
        "illegal_memory_access",
        re.compile(r"illegal memory access"),
        "CUDA error: an illegal memory access was encountered",
        "unknown",
    ),
    (
        "ecc_uncorrectable",
        re.compile(r"uncorrectable ECC error", re.I),
        "CUDA error: uncorrectable ECC error encountered",
        "hardware",
    ),
    (
        "nvlink_uncorrectable",
        re.compile(r"uncorrectable NVLink error", re.I),
        "CUDA error: uncorrectable NVLink error",
        "hardware",
    ),
    (
        "device_side_assert",
        re.compile(r"device-side assert(?!ions)|Assertion `.{0,300}` failed"),
        "CUDA device-side assertion failed",
        "software",
    ),
    ("cublas", re.compile(r"CUBLAS_STATUS_\w+|kernel execution error"), "cuBLAS kernel execution failed", "unknown"),
    ("misaligned_address", re.compile(r"misaligned address"), "CUDA error: misaligned address", "unknown"),
    (
        "launch_failure",
        re.compile(r"unspecified launch failure|launch timed out"),
        "CUDA error: kernel launch failure",
        "unknown",
    ),
]
_CUDA_MSG = re.compile(r"CUDA error: ([^\n.]{1,120})")


def p_cuda_runtime(ctx: Ctx) -> Parsed:
    t = ctx.text
    hit = first_kind(_CUDA_KINDS, t)
    if hit is not None:
        kind, _, title, cause = hit
    else:
        msg = _first(_CUDA_MSG, t)
        kind = mask_line(msg).lower() if msg else "cuda_error"
        title = f"CUDA error: {_short(mask_line(msg))}" if msg else "CUDA runtime error"
        cause = "unknown"
    if kind == "cublas":
        code = _first(re.compile(r"(CUBLAS_STATUS_\w+)|error: (\d+)\)"), t)
        title = f"cuBLAS failure {code}" if code else title
    if "ProcessGroupNCCL" in t or "watchdog" in t:
        ctx.reasons.append("CUDA error surfaced inside the NCCL watchdog: classified as the CUDA error, not a timeout")
    ctx.reasons.append(f"matched CUDA runtime error: {kind}")
    lines = ctx.matching(_CUDA_RUNTIME)
    return Parsed(title, lines, cause, [("error", kind)], (kind,))


_NCCL_ERR_KIND = re.compile(
    r"\b(nccl(?:System|UnhandledCuda|Remote|Internal|InvalidArgument|InvalidUsage|InProgress)\w*)"
)
_NCCL_ERR_MSG = re.compile(r"NCCL error(?: in: \S+)?,? ([a-z][a-z ]{3,60}?)(?: \(|,)")
_NCCL_CAUSE = {
    "ncclRemoteError": "network",
    "ncclSystemError": "infrastructure",
    "ncclInvalidUsage": "software",
    "ncclInvalidArgument": "software",
    "ncclInternalError": "software",
    "ncclUnhandledCudaError": "unknown",
}


def p_nccl_error(ctx: Ctx) -> Parsed:
    t = ctx.text
    kind = _first(_NCCL_ERR_KIND, t)
    if kind is None:
        msg = _first(_NCCL_ERR_MSG, t)
        kind = {
            "unhandled system error": "ncclSystemError",
            "unhandled cuda error": "ncclUnhandledCudaError",
            "internal error": "ncclInternalError",
            "invalid usage": "ncclInvalidUsage",
            "remote process exited or there was a network error": "ncclRemoteError",
        }.get(msg or "", "ncclError")
    kind = kind.rstrip(":")
    ctx.reasons.append(f"matched NCCL error: {kind}")
    lines = ctx.matching(_NCCL_ERROR)
    return Parsed(f"NCCL error: {kind}", lines, _NCCL_CAUSE.get(kind, "unknown"), [("nccl_error", kind)], (kind,))


_OPTYPE = re.compile(r"OpType=(\w+)")
_RANKS = re.compile(r"\[(?:PG [^\]]{0,40})?Rank (\d+)\]")


def p_nccl_watchdog(ctx: Ctx) -> Parsed:
    t = ctx.text
    ops = sorted(set(_OPTYPE.findall(t)))
    ranks = set(_RANKS.findall(t))
    if ops:
        kind = "collective_timeout"
        title = f"NCCL watchdog timeout in {', '.join(ops)}"
    elif "got stuck" in t or "heartbeat" in t.lower():
        kind = "watchdog_stuck"
        title = "NCCL watchdog stuck (heartbeat monitor)"
    else:
        kind = "ops_failed_process_down"
        title = "NCCL operations failed or timed out; process taken down"
    ctx.reasons.append(
        f"matched NCCL watchdog line: {kind}"
        + (f", op {', '.join(ops)}" if ops else "")
        + (f"; {len(ranks)} ranks' lines folded into one" if len(ranks) > 1 else "")
        + "; sequence numbers, timeouts and sizes masked"
    )
    lines = ctx.matching(_NCCL_WATCHDOG)
    details = [("kind", kind)]
    if ops:
        details.append(("op", ",".join(ops)))
    return Parsed(title, lines, "unknown", details, (kind, ",".join(ops)))


_IB_COMPLETION = re.compile(r"(?:with )?(?:error|status)[= ](\d+).{0,60}?vendor err (\d+)(?: \((\w+)\))?")
_IB_RETRY = re.compile(r"[Tt]ransport retry count exceeded(?:.{0,40}?vend (0x[0-9a-fA-F]+))?")


_IB_EVENT = re.compile(r"(mlx5_(?![0-9]+\b)\w+|Port module event|Cable \w+|Link \w+)")


def p_infiniband(ctx: Ctx) -> Parsed:
    t = ctx.text
    free: tuple[str, ...] = ()
    m = _IB_COMPLETION.search(t)
    if m and "completion" in t:
        status, vendor = m.group(1), m.group(2)
        title = f"InfiniBand completion error status {status} (vendor err {vendor})"
        details = [("ib_status", status), ("vendor_err", vendor)]
        key: tuple[str, ...] = ("completion", status, vendor)
        lines = ctx.matching(re.compile(r"completion from peer"))
    elif _IB_RETRY.search(t):
        title = "InfiniBand transport retry count exceeded"
        details = [("ib_status", "12"), ("kind", "retry_exceeded")]
        key = ("completion", "12", "retry")
        lines = ctx.matching(_IB_RETRY)
    else:
        lines = ctx.matching(_IB_MISC)
        first = lines[0] if lines else ""
        # The event kind, never a device instance (mlx5_3: a NIC name is a variable of the text).
        ev = _first(_IB_EVENT, first) or "mlx5"
        tail = first[first.find(ev) :] if ev in first else first
        title = f"Mellanox/IB event: {_short(tail, 70)}"
        details = [("kind", ev)]
        key = (ev,)
        free = tuple(lines[:3])
    ctx.reasons.append(f"matched InfiniBand/RDMA error: {title}")
    cause = "hardware" if re.search(r"power|[Cc]able|[Tt]emperature", t) else "network"
    return Parsed(title, lines, cause, details, key, free)


_WARN = re.compile(r"NCCL WARN (.*)")


def p_nccl_warn(ctx: Ctx) -> Parsed:
    lines = ctx.matching(_WARN)
    first = _first(_WARN, "\n".join(lines)) or ""
    cause = "network" if re.search(r"[Cc]onnect|socket|ibv_|NET/", first) else "unknown"
    if "Duplicate GPU" in first:
        cause = "software"
    ctx.reasons.append("matched NCCL WARN line; first warning decides")
    return Parsed(f"NCCL WARN: {_short(first, 80)}", lines, cause, [("warn", first)], (), (first,))


# bounded: an unclosed "(pid" repeated through a text must not rescan the rest of it each time
_DL_SIGNAL = re.compile(r"DataLoader worker \(pid[^)\n]{0,200}+\) is killed by signal: ([A-Za-z][A-Za-z ]{1,30}?)[.\n]")


def p_dataloader(ctx: Ctx) -> Parsed:
    t = ctx.text + "\n"
    sig = _first(_DL_SIGNAL, t)
    if sig:
        title, key = f"DataLoader worker killed by signal: {sig}", ("signal", sig)
    elif "exited unexpectedly" in t:
        title, key = "DataLoader worker exited unexpectedly", ("exited", "")
    else:
        title, key = "DataLoader worker error", ("other", "")
    ctx.reasons.append(f"matched DataLoader worker failure ({key[0]} {key[1]})".strip())
    lines = ctx.matching(_DATALOADER)
    details = [("signal", sig)] if sig else [("kind", key[0])]
    cause = "infrastructure" if sig == "Bus error" and "shared memory" in t else "unknown"
    return Parsed(title, lines, cause, details, key)


_EXITCODE = re.compile(r"exitcode\s*:?\s*(-?\d+)")
_SIGNAME = re.compile(r"\b(SIG[A-Z]{2,6})\b")


def p_launcher(ctx: Ctx) -> Parsed:
    t = ctx.text
    code = _first(_EXITCODE, t)
    sig = _SIGNALS.get(code[1:]) if code and code.startswith("-") else None
    if sig is None:
        m = re.search(r"(?:Signal \d+ \(|terminated with signal |received )(SIG[A-Z]{2,6})", t)
        sig = m.group(1) if m else None
    if "ChildFailedError" in t:
        what = "torchrun child process failed"
    elif "ProcessExitedException" in t:
        what = "multiprocessing spawn: process terminated"
    else:
        what = "torch elastic worker failed"
    title = what + (f" (exitcode {code})" if code else "") + (f" {sig}" if sig else "")
    ctx.reasons.append(f"matched launcher failure summary: exitcode {code}, signal {sig}")
    lines = ctx.matching(_LAUNCHER)
    details = [(k, v) for k, v in (("exitcode", code), ("signal", sig)) if v]
    cause = "infrastructure" if sig in ("SIGKILL",) else "unknown"
    return Parsed(title, lines, cause, details, (what, code or "", sig or ""))


def p_rendezvous(ctx: Ctx) -> Parsed:
    t = ctx.text
    if "client socket has timed out" in t:
        kind, title = "store_connect_timeout", "c10d store: client socket timed out connecting"
    elif "gloo" in t and "Timed out" in t:
        kind, title = "gloo_timeout", "gloo collective timed out (barrier/recv)"
    else:
        kind, title = "rendezvous", "rendezvous/store failure"
    ctx.reasons.append(f"matched rendezvous/store failure: {kind}")
    return Parsed(title, ctx.matching(_RENDEZVOUS), "network", [("kind", kind)], (kind,))


_SLURM_KINDS = [
    ("oom_kill", re.compile(r"oom-kill|Out Of Memory"), "SLURM: job step killed by cgroup OOM", "software"),
    ("time_limit", re.compile(r"DUE TO TIME LIMIT"), "SLURM: job cancelled at time limit", "infrastructure"),
    ("preempted", re.compile(r"DUE TO PREEMPTION"), "SLURM: job preempted", "infrastructure"),
    ("node_fail", re.compile(r"DUE TO NODE FAILURE|NODE_FAIL"), "SLURM: node failure", "hardware"),
    ("signal", re.compile(r"WTERMSIG \d+"), "SLURM: job ended by signal", "unknown"),
    ("cancelled", re.compile(r"CANCELLED"), "SLURM: job step cancelled", "unknown"),
]


def p_slurm(ctx: Ctx) -> Parsed:
    t = ctx.text
    kind, _, title, cause = first_kind(_SLURM_KINDS, t) or ("slurm", None, "SLURM error", "unknown")
    sig = _first(re.compile(r"WTERMSIG (\d+)"), t)
    if sig:
        title += f" {_SIGNALS.get(sig, sig)}"
    ctx.reasons.append(f"matched SLURM message: {kind}")
    det = [("kind", kind)] + ([("signal", _SIGNALS.get(sig, sig))] if sig else [])
    return Parsed(title, ctx.matching(_SLURM), cause, det, (kind, sig or ""))


def p_kubernetes(ctx: Ctx) -> Parsed:
    t = ctx.text
    reason = _first(re.compile(r"Reason:\s+(\w+)"), t)
    code = _first(re.compile(r"Exit Code:\s+(\d+)"), t)
    if "low on resource" in t or "Evicted" in t:
        kind, title, cause = "evicted", "Kubernetes pod evicted: node low on resource", "infrastructure"
    elif reason == "OOMKilled":
        kind, title, cause = "oomkilled", "Kubernetes container OOMKilled", "software"
    else:
        kind = (reason or "terminated").lower()
        title = f"Kubernetes container terminated: {reason or 'unknown'}" + (f" exit code {code}" if code else "")
        cause = "unknown"
    ctx.reasons.append(f"matched Kubernetes container state: {kind}")
    det = [("kind", kind)] + ([("exit_code", code)] if code else [])
    return Parsed(title, ctx.matching(_KUBERNETES), cause, det, (kind, code or ""))


_HOSTHW_KINDS = [
    ("block_io_error", re.compile(r"I/O error|blk_update_request"), "Block device I/O error"),
    ("edac", re.compile(r"EDAC"), "Host memory ECC error (EDAC)"),
    ("pcie_aer", re.compile(r"PCIe Bus Error|AER:"), "PCIe AER error"),
    ("mce", re.compile(r"Machine check|mce:|Hardware Error"), "Machine check / hardware error"),
]


def p_host_hw(ctx: Ctx) -> Parsed:
    kind, _, title = first_kind(_HOSTHW_KINDS, ctx.text) or ("host_hw", None, "Host hardware error")
    ctx.reasons.append(f"matched host hardware error: {kind}")
    return Parsed(title, ctx.matching(_HOST_HW), "hardware", [("kind", kind)], (kind,))


def _simple(title: str, cause: str, rx_name: str) -> Callable[[Ctx], Parsed]:
    def p(ctx: Ctx) -> Parsed:
        rx = globals()[rx_name]
        lines = ctx.matching(rx)
        ctx.reasons.append(f"matched {title.lower()} marker")
        key_kind = _first(rx, ctx.text, 0) or ""
        key_kind = mask_line(key_kind).lower()
        return Parsed(
            f"{title}: {_short(lines[0], 70)}" if lines else title, lines, cause, [("kind", key_kind)], (key_kind,)
        )

    return p


_LOSS_KINDS = [
    (
        "nan_grad_norm",
        re.compile(r"NaN in (?:local )?grad norm|found NaN|grad norm: nan\b", re.I),
        "NaN in gradient norm",
    ),
    # (a Megatron progress line says "lm loss: nan" or counts its NaN iterations)
    (
        "nan_result",
        re.compile(r"result nan|loss is nan|nan loss|\bloss\s*[:=]\s*nan\b|number of nan iterations:\s*[1-9]", re.I),
        "NaN loss/result",
    ),
    (
        "min_loss_scale",
        re.compile(r"loss scale already at minimum|minimum loss scale", re.I),
        "Loss scale reached its minimum",
    ),
    (
        "overflow",
        re.compile(r"OVERFLOW!|overflow detected|Gradient overflow|inf or nan in gradients", re.I),
        "Gradient overflow: loss scale reduced",
    ),
    ("loss_spike", re.compile(r"\bloss spike|\bspike in (?:the )?(?:training )?loss", re.I), "Loss spike"),
    ("grad_norm_spike", re.compile(r"grad norm|lm loss", re.I), "Loss / grad-norm spike"),
]


def p_loss(ctx: Ctx) -> Parsed:
    t = ctx.text
    kind, _, title = first_kind(_LOSS_KINDS, t) or ("loss", None, "Loss instability")
    if kind == "grad_norm_spike":
        vals = grad_norms(t)
        if len(vals) >= 2 and vals[0] > 0:
            ctx.reasons.append(f"grad norm grew {max(vals) / vals[0]:.0f}x over {len(vals)} lines")
    ctx.reasons.append(f"matched numerical-instability line: {kind}")
    return Parsed(title, ctx.matching(_LOSS), "unknown", [("kind", kind)], (kind,))


def p_hang(ctx: Ctx) -> Parsed:
    t = ctx.text
    if re.search(r"Thread \d+ \(\w+\)|py-spy", t):
        kind = "stack_dump"
        # innermost/outermost frames of the first thread, line numbers dropped
        fr = re.findall(r"^[ \t]+([\w<>.]+) \(([^:()\n]+)", t, re.M)[:6]
        title = "Hang: stack dump" + (f" waiting in {fr[0][0]} ({fr[0][1].rsplit('/', 1)[-1]})" if fr else "")
        key = tuple(f for f, _ in fr)
    else:
        kind, title, key = "no_progress", "Hang: job running without progress", ()
    ctx.reasons.append(f"matched hang marker: {kind}")
    return Parsed(title, ctx.matching(_HANG), "unknown", [("kind", kind)], (kind,) + key)


def p_checkpoint(ctx: Ctx) -> Parsed:
    t = ctx.text
    if "No space left" in t:
        kind, title, cause = "disk_full", "Checkpoint I/O: no space left on device", "infrastructure"
    elif "PytorchStreamWriter failed" in t or "write_record" in t:
        kind, title, cause = "write_failed", "Checkpoint write failed (torch.save)", "infrastructure"
    elif "PytorchStreamReader failed" in t:
        kind, title, cause = "read_failed", "Checkpoint read failed (corrupt archive)", "data"
    else:
        kind, title, cause = "io_error", "Checkpoint I/O error", "infrastructure"
    ctx.reasons.append(f"matched checkpoint I/O failure: {kind}")
    return Parsed(title, ctx.matching(_CHECKPOINT), cause, [("kind", kind)], (kind,))


def p_host_oom(ctx: Ctx) -> Parsed:
    ctx.reasons.append("matched host OOM killer marker")
    return Parsed(
        "Host OOM: process killed", ctx.matching(_HOST_OOM), "software", [("kind", "oom_killed")], ("oom_killed",)
    )


_ALERT_NAME = re.compile(r"alertname[=:]\s*\"?([\w.:-]+)|\[FIRING(?::\d+)?\]\s*([\w.:-]+)")


def p_alert(ctx: Ctx) -> Parsed:
    m = _ALERT_NAME.search(ctx.text)
    name = (m.group(1) or m.group(2)) if m else "alert"
    ctx.reasons.append(f"matched Prometheus alert: {name}")
    return Parsed(f"Alert {name}", ctx.all_masked(), "unknown", [("alertname", name)], (name,))


# --- Python tracebacks -------------------------------------------------------------------

_TB_START = "Traceback (most recent call last):"
_FRAME = re.compile(r'^[ \t]*File "([^"\n]{1,500})", line \d+, in ([^\s]{1,200})')
_EXC_LINE = re.compile(
    r"^([A-Za-z_][\w.]{0,150}(?:Error|Exception|Exit|Interrupt|Warning|Failure|Fault|Timeout|Exited\w*)):?(?: (.*))?$"
)
# After a traceback's frames, Python prints the exception as the first unindented line: its type is
# whatever the class is called (``zlib.error``, ``socket.timeout``, ``KeyboardInterrupt``,
# ``StopIteration``), so there the suffix above is not required.
_EXC_AFTER_FRAMES = re.compile(r"^([A-Za-z_][\w.]{0,150})(?:: (.*))?$")
_CHAIN = re.compile(r"During handling of the above exception|The above exception was the direct cause")
_FRAMEWORK = re.compile(r"site-packages|dist-packages|/lib/python\d|<frozen|^<|/torch/|/usr/lib/|\.\.\./torch/")


def parse_traceback(ctx: Ctx) -> tuple[str, str, list[str], list[str], str] | None:
    """Return (exception type, masked message, in-app function names nearest the error,
    chain of exception types, where: file:function of the nearest in-app frame) for the last
    traceback, or None when no exception line is found."""
    lines = [strip_line_prefix(ln) for ln in ctx.lines]
    exc_type: str | None = None
    msg = ""
    frames: list[tuple[str, str]] = []
    chain: list[str] = []
    cur_frames: list[tuple[str, str]] = []
    for ln in lines:
        s = ln.strip()
        if s.startswith(_TB_START):
            cur_frames = []
            continue
        fm = _FRAME.match(ln)
        if fm:
            cur_frames.append((fm.group(1), fm.group(2)))
            continue
        em = _EXC_LINE.match(s)
        if em is None and cur_frames and ln[:1] not in (" ", "\t"):
            em = _EXC_AFTER_FRAMES.match(s)
        if em:
            exc_type, msg = em.group(1), (em.group(2) or "")
            chain.append(exc_type)
            frames = cur_frames
            cur_frames = []
    if exc_type is None:
        return None
    app = [fn for path, fn in frames if not _FRAMEWORK.search(path)]
    files = [path for path, _ in frames if not _FRAMEWORK.search(path)]
    near = app[-3:]
    where = ""
    if app:
        where = f"{files[-1].replace(chr(92), '/').rsplit('/', 1)[-1]}:{app[-1]}"
    elif frames:
        where = f"{frames[-1][0].rsplit('/', 1)[-1]}:{frames[-1][1]}"
    return exc_type, mask_line(msg[:500], ctx.found), near, chain[:-1] if len(chain) > 1 else [], where


def p_traceback(ctx: Ctx) -> Parsed:
    r = parse_traceback(ctx)
    assert r is not None
    exc, msg, near, chain, where = r
    exc = exc.replace("torch.cuda.", "torch.")
    title = f"{exc} in {where}" if where else f"{exc}: {_short(msg, 60)}"
    details = [("exception", exc)]
    if near:
        details.append(("frames", ">".join(near)))
    if chain:
        details.append(("chained_from", ">".join(chain)))
    ctx.reasons.append(
        f"parsed Python traceback: {exc}; grouped on type, masked message and in-app frames "
        f"{', '.join(near) or '(none)'} (line numbers ignored)"
    )
    tl = [f"{exc}: {msg}"] + [f"in {fn}" for fn in near]
    return Parsed(title, tl, "software", details, (exc, *near), (msg,))


_QUOTED = re.compile(r"'[^'\n]{0,200}'|\"[^\"\n]{0,200}\"")
_KV_VALUE = re.compile(r"\b([A-Za-z_][\w.-]{0,60}=)(?!<)([^\s,;)\]}]{1,200})")


def _generic_line(line: str, found: list | None) -> str:
    """Extra masking for text no parser knows: quoted values and key=value values."""

    def q(m: re.Match) -> str:
        if found is not None:
            found.append(("STR", m.group(0)))
        return "<STR>"

    def kv(m: re.Match) -> str:
        if found is not None:
            found.append(("VALUE", m.group(2)))
        return m.group(1) + "<VALUE>"

    return _KV_VALUE.sub(kv, _QUOTED.sub(q, line))


def p_other(ctx: Ctx) -> Parsed:
    # The raw lines are the free text: the template engine's tokens mark variables by shape and
    # the engine decides the rest from the data. The masked form is built only to explain.
    free: list[str] = []
    seen: set[str] = set()
    for ln in ctx.lines:
        ln = strip_line_prefix(ln).strip()
        if ln and ln not in seen:
            seen.add(ln)
            free.append(ln)
            if len(free) >= MAX_TEMPLATE_LINES:
                break
    if ctx.found is not None:
        lines = [_generic_line(ln, ctx.found) for ln in ctx.all_masked()]
    else:
        lines = free
    ctx.reasons.append("no specific parser matched: template learned from the data (see the template engine)")
    title = _short(lines[0], 90) if lines else "(empty text)"
    return Parsed(title, lines, "unknown", [], (), tuple(free))


# --------------------------------------------------------------------------------------------
# detectors (order = precedence)

_XID_DET = re.compile(r"\bS?Xid \(")
_CUDA_OOM = re.compile(r"CUDA out of memory|OutOfMemoryError|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation")
_CUDA_RUNTIME = re.compile(
    r"CUDA error:|illegal memory access|device-side assert(?!ions)|Assertion `.{0,300}` failed|CUBLAS_STATUS_"
    r"|kernel execution error|uncorrectable ECC error|uncorrectable NVLink error|CUDA kernel errors might be asynchronously"
    r"|Triton Error \[CUDA\]|c10::CUDAError"
)
_NCCL_ERROR = re.compile(r"NCCL error|\bnccl(?:System|UnhandledCuda|Remote|Internal|InvalidArgument|InvalidUsage)\w*")
_NCCL_WATCHDOG = re.compile(
    r"Watchdog caught collective operation timeout|watchdog got stuck|Some NCCL operations have failed or timed out"
    r"|failure detected by watchdog|taking the entire process down|watchdog thread terminat|detected by watchdog"
    r"|FlightRecorder is disabled"
)
# "mlx5_" is the driver's own line (mlx5_core, mlx5_port_module_event:), never NCCL's INFO list of
# the NICs it uses ("NET/IB : Using [0]mlx5_0:1/IB,[1]mlx5_1:1/IB"): that is every job's start
_MLX5 = r"mlx5_(?!\d+:\d+/)"
_IB_MISC = re.compile(_MLX5 + r"|Port module event|ib_core|IBV_WC_|ibv_poll_cq")
_INFINIBAND = re.compile(
    r"NET/IBP?\s?:\s?Got completion from peer|[Tt]ransport retry count exceeded|"
    + _MLX5
    + r"|Port module event|IBV_WC_\w+_ERR"
)
_NCCL_WARN = re.compile(r"NCCL WARN")
_GPU_LOST = re.compile(
    r"Unable to determine the device handle|GPU is lost|is/are busy or unavailable|all links are inActive"
    r"|system not yet initialized|fallen off the bus|No devices were found|GPU requires reset|Unable to retrieve NVLink"
)
_GPU_HEALTH = re.compile(
    r"DCGM_FR_\w+|\|\s*Diagnostic\s*\||(?:SRAM|DRAM) Uncorrectable|\|\s*Fail - GPU|row\s+remappings are pending"
    r"|_fabricNotifyEvent|knvlink\w+|dcgmi diag|Retired Pages|Remapped Rows"
)
_HANG = re.compile(
    r"PULSE: .{0,80} is running|Thread \d+ \(idle\)|Thread \d+ \(active\)|py-spy|# The lagging one|appears to be hung|hang detected"
)
_LOSS_WORDS = re.compile(
    r"found NaN|NaN in (?:local )?grad norm|Unexpected result nan|OVERFLOW!|overflow detected, setting loss scale"
    r"|loss scale already at minimum|loss is nan|nan loss|Gradient overflow|inf or nan in gradients"
    r"|\bloss spike|\bspike in (?:the )?(?:training )?loss|\bloss\s*[:=]\s*nan\b|number of nan iterations:\s*[1-9]",
    re.I,
)
_GRAD_NORM = re.compile(r"grad norm: ([0-9.]+)", re.I)
# a grad norm this large (clipping is usually at 1.0) is a spike by itself; a paste of progress lines
# whose grad norm grew this many times is one too
GRAD_NORM_SPIKE = 100.0
GRAD_NORM_GROWTH = 10.0


def grad_norms(text: str) -> list[float]:
    """The grad norms a text reports ("grad norm: 0.191"), of its first 1,000 such fields."""
    return [
        float(v)
        for g in itertools.islice(_GRAD_NORM.finditer(text[:MAX_ANALYSED]), 1000)
        if (v := g.group(1)).count(".") <= 1 and v != "."
    ]


class _LossDetector:
    """The loss rule's detector: a line that names a numerical failure, or progress lines whose
    grad norm is a spike. A Megatron progress line with an ordinary grad norm ("grad norm: 0.191")
    is training going well, not an instability (it is left to the generic template, as progress)."""

    def search(self, text: str):
        m = _LOSS_WORDS.search(text)
        if m:
            return m
        vals = grad_norms(text)
        if not vals:
            return None
        if max(vals) >= GRAD_NORM_SPIKE or (vals[0] > 0 and max(vals) / vals[0] >= GRAD_NORM_GROWTH):
            return _GRAD_NORM.search(text)
        return None


# what a loss line's template keeps (the lines that say it)
_LOSS = re.compile(_LOSS_WORDS.pattern + r"|grad norm: ", re.I)
_LOSS_DETECTOR = _LossDetector()
_DATALOADER = re.compile(r"DataLoader worker|error in worker|in worker process")
_CHECKPOINT = re.compile(
    r"No space left on device|PytorchStreamWriter failed|PytorchStreamReader failed|write\(\): fd \d+ failed"
    r"|serialization\.py\", line \d+, in _?save|checkpoint.{0,80}(?:failed|error)"
)
_LAUNCHER = re.compile(
    r"ChildFailedError|torch\.distributed\.elastic\.multiprocessing\.api.{0,20}failed|failed \(exitcode: -?\d+\)|ProcessExitedException"
)
_RENDEZVOUS = re.compile(
    r"client socket has timed out|DistNetworkError|TCPStore|RendezvousTimeoutError|RendezvousConnectionError|gloo/transport|Timed out waiting \d+ms for \w+ operation"
)
_SLURM = re.compile(r"slurmstepd:|srun: |slurm_script|_slurm_rpc|_job_complete: JobId|\*\*\* (?:JOB|STEP) \d+")
_KUBERNETES = re.compile(
    r"Reason:\s+(?:OOMKilled|Error|Evicted|ContainerCannotRun)|The node was low on resource|Killing container with id|Exit Code:\s+\d+"
)
_HOST_HW = re.compile(
    r"blk_update_request: I/O error|XFS \(\w+\): .{0,40}error|PCIe Bus Error|AER: |EDAC MC\d|\[Hardware Error\]|Machine check events logged|mce: \[Hardware"
)
_HOST_OOM = re.compile(r"(?m)^Killed\s*$|Out of memory: Kill|oom-killer|oom_reaper|Memory cgroup out of memory")
_ALERT = re.compile(r"alertname[=:]|\[FIRING(?::\d+)?\]|\[RESOLVED\]")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^[ \t]*[A-Za-z_][\w.]*(?:Error|Exception)\b: ", re.M)


class Detector(Protocol):
    """What claims a text for a rule: a compiled pattern, or an object with the same ``search``."""

    def search(self, text: str, /) -> object: ...


@dataclass(frozen=True, slots=True)
class Rule:
    """One failure kind: the category it files, its parser, the detector that claims a text and
    the gates: lower-case substrings one of which every detector match contains (a cheap filter)."""

    category: str
    parser: str
    detector: Detector
    parse: Callable[[Ctx], Parsed]
    gates: tuple[str, ...]


_DIGITS = str.maketrans("0123456789", "0000000000")

# Order = precedence: the first rule whose detector matches claims the text.
RULES: tuple[Rule, ...] = (
    Rule(
        "xid",
        "xid",
        _XID_DET,
        p_xid,
        ("xid (",),
    ),
    Rule(
        "cuda_oom",
        "cuda_oom",
        _CUDA_OOM,
        p_cuda_oom,
        ("out of memory", "outofmemory", "cuda_error_out_of_memory", "cudaerrormemoryallocation"),
    ),
    Rule(
        "cuda_runtime",
        "cuda_runtime",
        _CUDA_RUNTIME,
        p_cuda_runtime,
        (
            "cuda error:",
            "illegal memory access",
            "device-side assert",
            "assertion `",
            "cublas_status_",
            "kernel execution error",
            "uncorrectable ecc error",
            "uncorrectable nvlink error",
            "cuda kernel errors might",
            "triton error [cuda]",
            "c10::cudaerror",
        ),
    ),
    Rule(
        "nccl_error",
        "nccl_error",
        _NCCL_ERROR,
        p_nccl_error,
        ("nccl",),
    ),
    Rule(
        "nccl_watchdog_timeout",
        "nccl_watchdog",
        _NCCL_WATCHDOG,
        p_nccl_watchdog,
        ("watchdog", "some nccl operations", "taking the entire process down", "flightrecorder"),
    ),
    Rule(
        "infiniband_rdma",
        "infiniband",
        _INFINIBAND,
        p_infiniband,
        ("got completion from peer", "retry count exceeded", "mlx5_", "port module event", "ibv_wc_"),
    ),
    Rule(
        "nccl_warn",
        "nccl_warn",
        _NCCL_WARN,
        p_nccl_warn,
        ("nccl warn",),
    ),
    Rule(
        "gpu_lost",
        "gpu_lost",
        _GPU_LOST,
        _simple("GPU lost", "hardware", "_GPU_LOST"),
        (
            "unable to determine the device handle",
            "gpu is lost",
            "busy or unavailable",
            "all links are inactive",
            "system not yet initialized",
            "fallen off the bus",
            "no devices were found",
            "gpu requires reset",
            "unable to retrieve nvlink",
        ),
    ),
    Rule(
        "gpu_health_check",
        "gpu_health_check",
        _GPU_HEALTH,
        _simple("GPU health check failed", "hardware", "_GPU_HEALTH"),
        (
            "dcgm_fr_",
            "diagnostic",
            "uncorrectable",
            "fail - gpu",
            "remappings are pending",
            "_fabricnotifyevent",
            "knvlink",
            "dcgmi diag",
            "retired pages",
            "remapped rows",
        ),
    ),
    Rule(
        "hang",
        "hang",
        _HANG,
        p_hang,
        ("pulse:", "thread ", "py-spy", "# the lagging one", "appears to be hung", "hang detected"),
    ),
    Rule(
        "loss_instability",
        "loss_instability",
        _LOSS_DETECTOR,
        p_loss,
        ("nan", "overflow", "loss scale", "grad norm", "spike"),
    ),
    Rule(
        "dataloader",
        "dataloader",
        _DATALOADER,
        p_dataloader,
        ("dataloader worker", "error in worker", "in worker process"),
    ),
    Rule(
        "checkpoint_io",
        "checkpoint_io",
        _CHECKPOINT,
        p_checkpoint,
        (
            "no space left on device",
            "pytorchstreamwriter failed",
            "pytorchstreamreader failed",
            "write(): fd",
            "serialization.py",
            "checkpoint",
        ),
    ),
    Rule(
        "launcher_elastic",
        "launcher_elastic",
        _LAUNCHER,
        p_launcher,
        (
            "childfailederror",
            "torch.distributed.elastic.multiprocessing.api",
            "failed (exitcode:",
            "processexitedexception",
        ),
    ),
    Rule(
        "rendezvous_store",
        "rendezvous_store",
        _RENDEZVOUS,
        p_rendezvous,
        (
            "client socket has timed out",
            "distnetworkerror",
            "tcpstore",
            "rendezvoustimeouterror",
            "rendezvousconnectionerror",
            "gloo/transport",
            "timed out waiting",
        ),
    ),
    Rule(
        "slurm",
        "slurm",
        _SLURM,
        p_slurm,
        ("slurmstepd:", "srun: ", "slurm_script", "_slurm_rpc", "_job_complete: jobid", "*** job ", "*** step "),
    ),
    Rule(
        "kubernetes",
        "kubernetes",
        _KUBERNETES,
        p_kubernetes,
        ("reason:", "the node was low on resource", "killing container with id", "exit code:"),
    ),
    Rule(
        "host_hardware",
        "host_hardware",
        _HOST_HW,
        p_host_hw,
        (
            "blk_update_request: i/o error",
            "xfs (",
            "pcie bus error",
            "aer: ",
            "edac mc",
            "[hardware error]",
            "machine check events logged",
            "mce: [hardware",
        ),
    ),
    Rule(
        "host_oom",
        "host_oom",
        _HOST_OOM,
        p_host_oom,
        ("killed", "out of memory: kill", "oom-killer", "oom_reaper", "memory cgroup out of memory"),
    ),
    Rule(
        "alert",
        "alert",
        _ALERT,
        p_alert,
        ("alertname", "[firing", "[resolved]"),
    ),
)
# The gates with their digits zeroed, tried on the digit-zeroed lower-cased text: a text that
# passes no gate is unclaimed, and so is every text that differs from it only in its digits.
_ZEROED_GATES: tuple[tuple[Rule, tuple[str, ...]], ...] = tuple(
    (r, tuple(g.translate(_DIGITS) for g in r.gates)) for r in RULES
)


def classify(text: str, record: bool, zeroed: str | None = None) -> tuple[str, str, Parsed, Ctx, bool]:
    """Classify and parse *text*; returns (category, parser, parsed, ctx, gated). ``gated`` says
    whether some rule's gate passed: when it did not and the text is ``other``, the answer holds
    for every text with the same digit-zeroed form (``zeroed``, computed when not given)."""
    ctx = Ctx(text, record)
    low = (zeroed if zeroed is not None else text.translate(_DIGITS)).lower()
    gated = False
    for rule, gates in _ZEROED_GATES:
        if not any(g in low for g in gates):
            continue
        gated = True
        if rule.detector.search(text):
            return rule.category, rule.parser, rule.parse(ctx), ctx, True
    if _TRACEBACK.search(text) and parse_traceback(ctx) is not None:
        return "python_exception", "traceback", p_traceback(ctx), ctx, gated
    return "other", "template", p_other(ctx), ctx, gated


def run(text: str, record: bool) -> tuple[str, str, Parsed, Ctx]:
    """Classify and parse *text*; returns (category, parser, parsed, ctx)."""
    category, parser, parsed, ctx, _ = classify(text, record)
    return category, parser, parsed, ctx


def digest(parts: tuple[str, ...]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode("utf-8", "backslashreplace"))
        h.update(b"\x1f")
    return h.hexdigest()
