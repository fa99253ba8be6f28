"""Failure-text signatures: parse first, mask second, hash the canonical form.

Public API::

    fingerprint(text) -> Fingerprint     # pure, deterministic, cached by shape (shapes.py)
    explain(text) -> Explanation         # parser, masked values, reasons, and the Fingerprint
    TemplateEngine / assign              # the online template engine (templates.py)
    group(texts)                         # ids from one in-memory engine (tests, benchmarks)

Parsers claim what they know; the *partition* is ``blake2b(RULES_VERSION, parser, category,
claimed parts)`` and the rest of the text is its free ``tokens``. A signature is a template the
engine learned over the free tokens of one partition: ``template_fingerprint(partition,
template)``. ``Fingerprint.key`` is that of the text's own tokens (no variable learned yet), which
is the signature until the engine judges one of its tokens variable. The service runs the same
engine with its families in the database (services/templates.py). Bump ``RULES_VERSION`` when a
rule change must regroup. Only the first 32 KiB of a text are analysed (``masking.MAX_ANALYSED``).

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

from collections.abc import Iterable
from dataclasses import dataclass

from incidentbot.categories import CATEGORIES, CATEGORY_DOCS
from incidentbot.causes import CAUSE_CLASSES

from . import engine as _engine
from .engine import RULES, RULES_VERSION, Rule
from .masking import MAX_ANALYSED
from .shapes import MAX_TOKENS_THAT_MATTER, ShapeCache
from .templates import (
    DEFAULT_PARAMS,
    SEPARATOR,
    Assigned,
    Family,
    TemplateEngine,
    TemplateParams,
    assign,
    template_fingerprint,
)
from .tokens import VAR, tokens

__all__ = [
    "fingerprint",
    "explain",
    "Fingerprint",
    "Explanation",
    "RULES_VERSION",
    "RULES",
    "Rule",
    "CATEGORIES",
    "CAUSE_CLASSES",
    "CATEGORY_DOCS",
    "SHAPES",
    "ShapeCache",
    "MAX_TOKENS_THAT_MATTER",
    "TemplateEngine",
    "TemplateParams",
    "Family",
    "Assigned",
    "assign",
    "template_fingerprint",
    "group",
    "title_of_template",
    "DEFAULT_PARAMS",
    "tokens",
    "VAR",
]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    key: str
    title: str
    template: str
    category: str
    cause_class: str
    parser: str
    details: tuple[tuple[str, str], ...]
    partition: str = ""  # digest of what the parser claimed: the engine learns templates within it
    tokens: tuple[str, ...] = ()  # the free text's tokens (lines joined by SEPARATOR)

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


def free_tokens(lines: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for line in lines:
        if out:
            out.append(SEPARATOR)
        out += tokens(line)
    return tuple(out)


def _build(text: str, record: bool, zeroed: str | None = None) -> tuple[Fingerprint, _engine.Ctx, bool]:
    try:
        category, parser, parsed, ctx, gated = _engine.classify(text, record, zeroed)
    except Exception as exc:  # never raise: fall back to the generic template  # pragma: no cover
        ctx = _engine.Ctx(text, record)
        ctx.reasons.append(f"parser error ({type(exc).__name__}); generic template used")
        category, parser, parsed, gated = "other", "template", _engine.p_other(ctx), True
    cause = parsed.cause_class if parsed.cause_class in CAUSE_CLASSES else "unknown"
    partition = _engine.digest((RULES_VERSION, parser, category, *parsed.key_parts))
    toks = free_tokens(parsed.free)
    key = template_fingerprint(partition, " ".join(toks))
    details = tuple((str(k), str(v)) for k, v in parsed.details if v is not None)
    if category == "other":
        title = title_of_template(" ".join(toks))
        template = (
            "\n".join(" ".join(tokens(ln)) for ln in parsed.free) if not record else "\n".join(parsed.template_lines)
        )
    else:
        title = parsed.title.strip() or CATEGORY_DOCS[category]
        template = "\n".join(parsed.template_lines)
    fp = Fingerprint(key, title, template, category, cause, parser, details, partition, toks)
    return fp, ctx, category == "other" and not gated


def title_of_template(template: str) -> str:
    """The title of a generic signature: the first line of its template, shortened."""
    first = template.split("\n", 1)[0].strip()
    return _engine._short(first, 90) if first else "(empty text)"


def _parse_gated(text: str, zeroed: str | None) -> tuple[Fingerprint, bool]:
    fp, _, unclaimed = _build(text, False, zeroed)
    return fp, unclaimed


#: The process's shape cache (one per process: learned shapes are shared by every caller).
SHAPES = ShapeCache(_parse_gated)


def fingerprint(text: str) -> Fingerprint:
    """Fingerprint of one failure text (pure, deterministic across processes, cached)."""
    if not isinstance(text, str) or len(text) > MAX_ANALYSED:
        text = _clean(text)
    return SHAPES.get(text)


def explain(text: str) -> Explanation:
    """Why *text* got its fingerprint: parser, what was masked, reasons, its free tokens."""
    text = _clean(text)
    fp, ctx, _ = _build(text, True)
    masked = tuple(ctx.found or ())
    reasons = list(ctx.reasons)
    if masked:
        kinds: dict[str, int] = {}
        for k, _v in masked:
            kinds[k] = kinds.get(k, 0) + 1
        reasons.append("masked: " + ", ".join(f"{n} {k.lower()}" for k, n in kinds.items()))
    if fp.tokens:
        by_shape = sum(t == VAR for t in fp.tokens)
        reasons.append(
            f"{len(fp.tokens) - fp.tokens.count(SEPARATOR)} free tokens, {by_shape} variable by their shape; "
            "the template engine decides the rest from the texts it has seen"
        )
    reasons.append(f"category {fp.category}, cause class {fp.cause_class}, rules {RULES_VERSION}")
    return Explanation(fp.parser, masked, tuple(reasons), fp)


def group(texts: Iterable[str], *, params: TemplateParams = DEFAULT_PARAMS) -> list[int]:
    """Group ids (0..k-1, in order of first appearance) for texts fed one by one to a fresh
    in-memory engine, merges followed to the end: what the service does, without a database."""
    eng = TemplateEngine(params)
    fps = [
        eng.fingerprint_of(fp.partition, fp.tokens, fp.key, claimed=fp.parser != "template")
        for fp in map(fingerprint, texts)
    ]
    ids: dict[str, int] = {}
    return [ids.setdefault(eng.canonical(f), len(ids)) for f in fps]
