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
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from . import engine as _engine
from .engine import RULES_VERSION
from .masking import MAX_ANALYSED

__all__ = [
    "fingerprint",
    "explain",
    "Fingerprint",
    "Explanation",
    "RULES_VERSION",
    "CATEGORIES",
    "CAUSE_CLASSES",
    "CATEGORY_DOCS",
    "TemplateMiner",
    "group",
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
# rewriting tokens and re-fingerprinting. Later texts of that shape cost a translate or a regex
# pass and a dict look-up instead of a full parse: a 100,000-rank storm, or a fleet's Xid lines,
# parse once.
# Linear time: a token starts only where a hex run starts (the look-behind fails in O(1) inside a
# run) and every quantifier is possessive, so a 32 KiB run of hex letters with no digit is one
# scan, not a quadratic one (the old ``[0-9A-Fa-f]*[0-9][0-9A-Fa-f]*`` took 6-9 s on "a" * 32768).
# It matches exactly what the old pattern matched: a maximal hex run that holds a digit.
_TOKEN = re.compile(r"(?<![0-9A-Fa-f])[A-Fa-f]*+[0-9][0-9A-Fa-f]*+")
_TOKEN_SPLIT = re.compile(f"({_TOKEN.pattern})")
_MAX_PROBED_TOKENS = 256
# Texts whose key depends on more tokens than this are parsed each time (a table keyed by so many
# values would rarely be hit). A pasted Megatron log repeats "number of nan iterations: 0" per line.
_MAX_MATTER = 32
_SHAPES_MAX = 65536
_NO_CACHE = object()
_BY_WIDTH = object()
_shapes: dict[str, object] = {}
_sightings: dict[str, int] = {}
_SHAPE = str.maketrans("0123456789abcdefABCDEF", "0000000000aaaaaaAAAAAA")
# All-digit tokens are classed by width, not by exact width: 1-3 digits, 4 (years, PCI domains)
# and 5-9 digits each make one class, so ranks and pids of any size share a shape.
_SHORT_NUMBER = re.compile(r"(?<![0aA])0{1,3}(?![0aA])")
_LONG_NUMBER = re.compile(r"(?<![0aA])0{5,9}(?![0aA])")
_ROT_A = str.maketrans("0123456789abcdefABCDEF", "3456789012defabcDEFABC")
_ROT_B = str.maketrans("0123456789abcdefABCDEF", "7890123456cdefabCDEFAB")


def _rewrite(text: str, which, change: Callable[[str], str]) -> str:
    """``text`` with ``change`` applied to the tokens at positions ``which`` (all when None)."""
    i = -1

    def repl(m):
        nonlocal i
        i += 1
        return change(m.group()) if which is None or i in which else m.group()

    return _TOKEN.sub(repl, text)


def _resize(token: str) -> str:
    """An all-digit token of another width in the same width class (``_SHORT_NUMBER``, 4 digits,
    ``_LONG_NUMBER``); other tokens unchanged."""
    if not token.isdigit():
        return token
    n = len(token)
    if n <= 3:
        return "7" if n > 1 else "37"
    if 5 <= n <= 9:
        return "5" * (6 if n == 5 else n - 1)
    return token


def _learn(text: str, tokens: list[str], key: str, *, widths: bool):
    """Which token positions the key depends on: () when none, None when it cannot be told; and
    whether the answer also holds for other widths of the shape's all-digit tokens (asked only
    when ``widths``: a width-class shape stands for all of them).

    Group testing: rewrite a set of tokens at once and split only the sets that change the key,
    so a shape with a hundred numbers and one that matters costs a few dozen parses, once. The
    search uses one rewrite; the answer is then checked with a second one."""

    def same(which, tables=(_ROT_A,)) -> bool:
        return all(
            _fingerprint_cached(_rewrite(text, which, lambda tok, t=t: tok.translate(t))).key == key for t in tables
        )

    def resized(which) -> bool:
        return _fingerprint_cached(_rewrite(text, which, _resize)).key == key

    every = set(range(len(tokens)))
    if same(every, (_ROT_A, _ROT_B)):
        return (), (not widths or resized(every))
    if len(tokens) > _MAX_PROBED_TOKENS:
        return None, False

    def find(units: list[tuple[int, ...]]) -> list[int]:
        if same({i for unit in units for i in unit}):
            return []
        if len(units) == 1:
            return list(units[0])
        mid = len(units) // 2
        return find(units[:mid]) + find(units[mid:])

    # Token by token first. A pasted log that repeats one failure on several lines may depend on
    # a value wherever it appears (the Xid code of either line): rewriting one copy changes
    # nothing, so then the tokens of one value are rewritten together.
    by_value: dict[str, list[int]] = {}
    for i, tok in enumerate(tokens):
        by_value.setdefault(tok, []).append(i)
    for units in ([(i,) for i in range(len(tokens))], [tuple(v) for v in by_value.values()]):
        matter = tuple(sorted(find(units)))
        rest = every - set(matter)
        if matter and len(matter) <= _MAX_MATTER and same(rest, (_ROT_A, _ROT_B)):
            return matter, (not widths or resized(rest))
    return None, False


_by_text: dict[str, Fingerprint] = {}
_DIGITS = str.maketrans("0123456789", "0000000000")
# digit-zeroed text -> (spans of the tokens that matter, that shape's table of fingerprints)
_by_digits: dict[str, tuple[tuple[tuple[int, int], ...], dict]] = {}


def _bounded_put(cache: dict, key, value) -> None:
    # The caches start over when full: simpler than LRU, and a fleet's failure modes relearn fast.
    if len(cache) >= _SHAPES_MAX:
        cache.clear()
    cache[key] = value


def fingerprint(text: str) -> Fingerprint:
    """Fingerprint of one failure text (pure, deterministic across processes, cached)."""
    fp = _by_text.get(text)  # type: ignore[arg-type]
    if fp is not None:
        return fp
    fp = _fingerprint(_clean(text))
    if isinstance(text, str):
        _bounded_put(_by_text, text, fp)
    return fp


def _spans(parts: list[str], matter: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Character spans of the tokens at positions ``matter`` (``parts`` as _TOKEN_SPLIT gives)."""
    spans, pos = [], 0
    for i, part in enumerate(parts):
        if i % 2 and i // 2 in matter:
            spans.append((pos, pos + len(part)))
        pos += len(part)
    return tuple(spans)


def _fingerprint(text: str) -> Fingerprint:
    # Fast path: the text with its digits zeroed names one shape exactly (same tokens, same
    # widths), so a learned shape is found by one translate and one look-up, and the tokens that
    # matter are read by position. Texts with other digits or widths fall through and add theirs.
    digits = text.translate(_DIGITS)
    fast = _by_digits.get(digits)
    if fast is not None:
        spans, table = fast
        fp = table.get(tuple([text[a:b] for a, b in spans]))
        if fp is not None:
            return fp
    # One regex pass gives both the tokens and the text around them.
    parts = _TOKEN_SPLIT.split(text)
    tokens = parts[1::2]
    if not tokens:
        return _fingerprint_cached(text)
    # Class-preserving, like the rewrites that learn a shape: 9b and a3 are different shapes.
    # All-digit tokens are classed by width class (a rank of 7 and of 70000 share a shape), unless
    # learning found that width matters for this shape (mlx5_core is not mlx37_core): then the
    # exact-width shape is used. (Built from C-level string operations.)
    skeleton = "\x00".join(parts[0::2])
    exact = "\x02".join(tokens).translate(_SHAPE)
    shape = skeleton + "\x01" + _LONG_NUMBER.sub("5", _SHORT_NUMBER.sub("1", exact))
    entry = _shapes.get(shape)
    widths = True
    if entry is _BY_WIDTH:
        shape, widths = skeleton + "\x03" + exact, False
        entry = _shapes.get(shape)
    if entry is _NO_CACHE:
        return _fingerprint_cached(text)
    if entry is not None:
        matter, table, checked = entry
        values = tuple(tokens[i] for i in matter)
        if not widths or exact in checked:
            fp = table.get(values)
            if fp is None:
                fp = table[values] = _fingerprint_cached(text)
            _remember_digits(digits, parts, matter, table)
            return fp
        # Widths this shape has not been checked with (a rank of 7 where it learned 70000): the
        # first such text is parsed and must agree with what the shape predicts; a disagreement
        # (a PCI id of other widths is no longer a PCI id) sends the shape back to exact widths.
        fp = _fingerprint_cached(text)
        predicted = table.get(values)
        if predicted is not None:
            if predicted.key == fp.key:
                checked.add(exact)
                _remember_digits(digits, parts, matter, table)
            else:
                _shapes[shape] = _BY_WIDTH
        return fp
    fp = _fingerprint_cached(text)
    # A shape is learned on its second sight: one-off texts cost one parse, not a dozen.
    seen = _sightings.get(shape, 0) + 1
    if seen < 2:
        _bounded_put(_sightings, shape, seen)
        return fp
    _sightings.pop(shape, None)
    matter, width_free = _learn(text, tokens, fp.key, widths=widths)
    learned = _NO_CACHE if matter is None else (matter, {tuple(tokens[i] for i in matter): fp}, {exact})
    if widths and matter is not None and not width_free:
        _bounded_put(_shapes, shape, _BY_WIDTH)
        shape = skeleton + "\x03" + exact
    _bounded_put(_shapes, shape, learned)
    if matter is not None:
        _remember_digits(digits, parts, matter, learned[1])
    return fp


def _remember_digits(digits: str, parts: list[str], matter: tuple[int, ...], table: dict) -> None:
    _bounded_put(_by_digits, digits, (_spans(parts, matter), table))


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
