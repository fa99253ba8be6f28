"""Failure-text signatures: parse first, mask second, hash the canonical form.

Public API::

    fingerprint(text) -> Fingerprint     # pure, deterministic, LRU-cached by text
    explain(text) -> Explanation         # parser, masked values, reasons, and the Fingerprint
    TemplateMiner / group(texts)         # batch grouping of unknown log lines (see miner.py)

The key is ``blake2b(RULES_VERSION, parser, category, canonical parts)`` (16 bytes, hex).  Bump
``RULES_VERSION`` when a rule change must regroup; keep it when a change only adds recognition of
new text.  Only the first 32 KiB of a text are analysed (see ``masking.MAX_ANALYSED``).

Categories (``CATEGORIES``):

- ``nccl_watchdog_timeout``: torch.distributed/NCCL watchdog saw a collective time out (or got
  stuck) and took the process down; grouped on the collective's op type.
- ``nccl_error``: NCCL returned an error code (ncclSystemError, ncclRemoteError, ...).
- ``nccl_warn``: ``NCCL WARN`` debug lines (socket connect, ibv calls, proxy errors) with no
  stronger symptom; the first warning decides.
- ``infiniband_rdma``: IB completion errors (status / vendor err), transport retries exceeded,
  mlx5 driver events (cable, port, power).
- ``cuda_runtime``: CUDA runtime errors: illegal memory access, device-side assert, uncorrectable
  ECC / NVLink, cuBLAS failures, unknown CUDA errors — also when raised inside the NCCL watchdog.
- ``cuda_oom``: CUDA out of memory in all its wordings (one failure mode).
- ``xid``: NVIDIA driver Xid / NVSwitch SXid lines; the most severe (then first) code decides.
- ``gpu_lost``: the GPU is unreachable (nvidia-smi cannot get a handle, "GPU is lost", busy).
- ``gpu_health_check``: DCGM / nvidia-smi health or diagnostic output reporting a failure.
- ``loss_instability``: NaN in grad norm or loss, loss-scale overflow, loss/grad-norm spikes.
- ``hang``: progress stopped: stack dumps of idle threads, scheduler pulses without progress.
- ``dataloader``: DataLoader worker killed by a signal (kept) or exited unexpectedly.
- ``checkpoint_io``: saving/loading checkpoints failed (disk full, write failed, corrupt archive).
- ``launcher_elastic``: torchrun/elastic or mp.spawn failure summaries (exit code, signal).
- ``rendezvous_store``: c10d TCPStore / rendezvous / gloo connection timeouts.
- ``slurm``: SLURM step/job kills (cgroup OOM, time limit, cancellation, signals).
- ``kubernetes``: container terminations and evictions (OOMKilled, exit 137, node pressure).
- ``host_hardware``: host-side hardware errors (block I/O, PCIe AER, EDAC, MCE).
- ``host_oom``: host OOM killer killed the process.
- ``python_exception``: a Python traceback no specific parser claims; grouped on exception type,
  masked message and the job's own frames nearest the error (line numbers ignored).
- ``alert``: Prometheus/Alertmanager alert texts; grouped on alertname.
- ``other``: generic template of unknown text (variable tokens masked).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from . import engine as _engine
from .engine import RULES_VERSION
from .masking import MAX_ANALYSED

__all__ = [
    "fingerprint", "explain", "Fingerprint", "Explanation", "RULES_VERSION", "CATEGORIES",
    "CAUSE_CLASSES", "CATEGORY_DOCS", "TemplateMiner", "group",
]

CATEGORY_DOCS: dict[str, str] = {
    "nccl_watchdog_timeout": "NCCL/torch.distributed watchdog timed out a collective or got stuck",
    "nccl_error": "NCCL returned an error code",
    "nccl_warn": "NCCL WARN debug lines with no stronger symptom",
    "infiniband_rdma": "InfiniBand/RDMA completion errors, retries exceeded, mlx5 events",
    "cuda_runtime": "CUDA runtime error (illegal address, assert, ECC, NVLink, cuBLAS)",
    "cuda_oom": "CUDA out of memory (all wordings)",
    "xid": "NVIDIA Xid / SXid driver error",
    "gpu_lost": "GPU unreachable or lost",
    "gpu_health_check": "GPU health check / diagnostic failure",
    "loss_instability": "NaN, overflow or spike in loss / grad norm",
    "hang": "training stopped making progress",
    "dataloader": "DataLoader worker death",
    "checkpoint_io": "checkpoint save/load I/O failure",
    "launcher_elastic": "torchrun/elastic/mp.spawn failure summary",
    "rendezvous_store": "rendezvous / TCPStore / gloo timeout",
    "slurm": "SLURM kill or cancellation",
    "kubernetes": "Kubernetes container termination or eviction",
    "host_hardware": "host hardware error (disk, PCIe, memory, MCE)",
    "host_oom": "host OOM killer",
    "python_exception": "Python traceback no specific parser claims",
    "alert": "Prometheus alert text",
    "other": "generic template of unknown text",
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_DOCS)
CAUSE_CLASSES: tuple[str, ...] = ("hardware", "network", "software", "data", "infrastructure", "unknown")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    key: str
    title: str
    template: str
    category: str
    cause_class: str
    parser: str
    details: tuple[tuple[str, str], ...]

    def detail(self, name: str) -> str | None:
        for k, v in self.details:
            if k == name:
                return v
        return None


@dataclass(frozen=True, slots=True)
class Explanation:
    parser: str
    masked: tuple[tuple[str, str], ...]  # (kind, original value) in order of appearance
    reasons: tuple[str, ...]
    fingerprint: Fingerprint


def _clean(text: object) -> str:
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > MAX_ANALYSED:
        text = text[:MAX_ANALYSED]
    return text


def _build(text: str, record: bool) -> tuple[Fingerprint, _engine.Ctx]:
    try:
        category, parser, parsed, ctx = _engine.run(text, record)
    except Exception as exc:  # never raise: fall back to the generic template  # pragma: no cover
        ctx = _engine.Ctx(text, record)
        ctx.reasons.append(f"parser error ({type(exc).__name__}); generic template used")
        category, parser, parsed = "other", "template", _engine.p_other(ctx)
    cause = parsed.cause_class if parsed.cause_class in CAUSE_CLASSES else "unknown"
    key = _engine.digest((RULES_VERSION, parser, category, *parsed.key_parts))
    template = "\n".join(parsed.template_lines)
    details = tuple((str(k), str(v)) for k, v in parsed.details if v is not None)
    title = parsed.title.strip() or CATEGORY_DOCS[category]
    fp = Fingerprint(key, title, template, category, cause, parser, details)
    return fp, ctx


@lru_cache(maxsize=65536)
def _fingerprint_cached(text: str) -> Fingerprint:
    return _build(text, False)[0]


# Texts of one failure differ mostly in numbers (ranks, pids, addresses, timestamps). The shape of
# a text is the text with every number-like token replaced; for each shape we learn, once, which
# of its tokens the fingerprint depends on (an Xid code does, a PCI address or pid does not) by
# rewriting tokens and re-fingerprinting. Later texts of that shape cost one regex pass and a dict
# look-up instead of a full parse: a 100,000-rank storm, or a fleet's Xid lines, parse once.
_TOKEN = re.compile(r"[0-9A-Fa-f]*[0-9][0-9A-Fa-f]*")
_MAX_PROBED_TOKENS = 256
_SHAPES_MAX = 65536
_NO_CACHE = object()
_shapes: dict[str, object] = {}
_sightings: dict[str, int] = {}
_SHAPE = str.maketrans("0123456789abcdefABCDEF", "0000000000aaaaaaAAAAAA")
_ROT_A = str.maketrans("0123456789abcdefABCDEF", "3456789012defabcDEFABC")
_ROT_B = str.maketrans("0123456789abcdefABCDEF", "7890123456cdefabCDEFAB")


def _rewrite(text: str, which, table) -> str:
    i = -1

    def repl(m):
        nonlocal i
        i += 1
        return m.group().translate(table) if which is None or i in which else m.group()

    return _TOKEN.sub(repl, text)


def _learn(text: str, tokens: list[str], key: str):
    """Which token positions the key depends on: () when none, None when it cannot be told.

    Group testing: rewrite a set of tokens at once and split only the sets that change the key,
    so a shape with a hundred numbers and one that matters costs a few dozen parses, once."""
    def same(which) -> bool:
        return all(_fingerprint_cached(_rewrite(text, which, t)).key == key for t in (_ROT_A, _ROT_B))

    if same(None):
        return ()
    if len(tokens) > _MAX_PROBED_TOKENS:
        return None

    def find(group: list[int]) -> list[int]:
        if same(set(group)):
            return []
        if len(group) == 1:
            return group
        mid = len(group) // 2
        return find(group[:mid]) + find(group[mid:])

    matter = tuple(find(list(range(len(tokens)))))
    rest = set(range(len(tokens))) - set(matter)
    return matter if matter and len(matter) <= 8 and same(rest) else None


_by_text: dict[str, Fingerprint] = {}


def fingerprint(text: str) -> Fingerprint:
    """Fingerprint of one failure text (pure, deterministic across processes, cached)."""
    fp = _by_text.get(text)  # type: ignore[arg-type]
    if fp is not None:
        return fp
    fp = _fingerprint(_clean(text))
    if isinstance(text, str):
        if len(_by_text) >= _SHAPES_MAX:
            _by_text.clear()
        _by_text[text] = fp
    return fp


def _fingerprint(text: str) -> Fingerprint:
    tokens = _TOKEN.findall(text)
    if not tokens:
        return _fingerprint_cached(text)
    # Class-preserving, like the rewrites that learn a shape: 9b and a3 are different shapes.
    # (Built from C-level string operations: the skeleton, then the tokens' character classes.)
    shape = _TOKEN.sub("\x00", text) + "\x01" + "\x02".join(tokens).translate(_SHAPE)
    entry = _shapes.get(shape)
    if entry is _NO_CACHE:
        return _fingerprint_cached(text)
    if entry is not None:
        matter, table = entry
        if not matter or max(matter) < len(tokens):
            values = tuple(tokens[i] for i in matter)
            fp = table.get(values)
            if fp is None:
                fp = table[values] = _fingerprint_cached(text)
            return fp
    fp = _fingerprint_cached(text)
    # A shape is learned on its second sight: one-off texts cost one parse, not a dozen.
    seen = _sightings.get(shape, 0) + 1
    if seen < 2:
        if len(_sightings) >= _SHAPES_MAX:
            _sightings.clear()
        _sightings[shape] = seen
        return fp
    _sightings.pop(shape, None)
    matter = _learn(text, tokens, fp.key)
    if len(_shapes) >= _SHAPES_MAX:
        _shapes.clear()
    _shapes[shape] = _NO_CACHE if matter is None else (matter, {tuple(tokens[i] for i in matter): fp})
    return fp


def explain(text: str) -> Explanation:
    """Why *text* got its fingerprint: parser, what was masked, reason lines."""
    text = _clean(text)
    fp, ctx = _build(text, True)
    masked = tuple(ctx.found or ())
    reasons = list(ctx.reasons)
    if masked:
        kinds: dict[str, int] = {}
        for k, _ in masked:
            kinds[k] = kinds.get(k, 0) + 1
        reasons.append("masked: " + ", ".join(f"{n} {k.lower()}" for k, n in kinds.items()))
    reasons.append(f"category {fp.category}, cause class {fp.cause_class}, rules {RULES_VERSION}")
    return Explanation(fp.parser, masked, tuple(reasons), fp)


from .miner import TemplateMiner, group  # noqa: E402
