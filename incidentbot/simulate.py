"""Scenario simulator: a GPU fleet, training jobs over versions, and the failures they log.

``simulate(seed, size=..., shapes=None)`` returns a :class:`Scenario`: events in the ingest API
schema (``event_id, job_id, message, time, cluster, host, gpu, rank, step, code_version,
versions, kind``, and ``attributes`` {run_id, attempt} where the fleet's reporter sends them), the
fleet topology (host -> leaf switch) and, kept apart from the events, the truth: which cause
produced each event, which of our templates rendered it, the cause list (each with its ``kind``,
``shape`` and number of ``interruptions``) and the fleet's shapes.

Shapes (:class:`Shapes`, drawn per seed by :func:`draw_shapes`): host naming (IPv4 with one /24
per leaf, rack tokens, SLURM ``node001``, the classic ``c1-gpu0007``; FQDN in kernel lines beside
short names elsewhere; SLURM host lists in scheduler lines), GPU as an index or a PCI bus id,
restart conventions (one job id, ``-r2`` suffixes, a new SLURM job id per requeue, a new
torchelastic run id), NCCL watchdog timeouts of 10 or 30 minutes (the storm comes that long after
the hang, and the text says so), the many-symptom bug on one version or only on a torch x CUDA
pair, the driver version standing for a cluster, a corrupt shard read by another rank after a
restart. ``shapes="classic"`` is the fleet before shapes, with its cause mix.

The cause mix follows the published interruption shares in ``taxonomy.md`` (Llama 3 405B, 419
unexpected interruptions: GPU 64%, software 13%, network 8%, host/maintenance 13%, unknown
watchdog timeouts 2%): each cause's rate is set so its expected interruptions are its share of
the size's budget (see ``SHARES``). Storm causes: a GPU falling off the bus or a GSP timeout
(hardware precursor), a flapping leaf switch, a storage stall hitting every job of a cluster at
once, a collective hang with no precursor. Every scenario contains the "one bug, four symptoms"
case (an upstream reduction bug that shows up as a NaN loss, an illegal memory access, a
device-side assert and a grad-norm spike, on all hosts; rarer than the storms around it) and
confounders: the illegal-memory-access text also comes from one failing GPU, the watchdog-timeout
storm from five different causes, and a NaN loss also from a corrupt data shard.

The message templates are our own, written after real failure texts (NCCL watchdog, NVRM Xid,
CUDA runtime errors, InfiniBand completion errors, Python tracebacks, slurmstepd lines); every
variable part (ranks, pids, PCI ids, sequence numbers, sizes, timestamps) varies per event.

Deterministic: the same seed, size and shapes give byte-identical output.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from incidentbot.analysis import EventRecord, SignatureInfo
from incidentbot.analysis.lineage import launcher_job_name

__all__ = [
    "Scenario",
    "Cause",
    "Shapes",
    "CLASSIC",
    "draw_shapes",
    "simulate",
    "write_scenario",
    "to_records",
    "compress_nodelist",
    "TEMPLATES",
    "SIZES",
    "NOISE",
    "SINGLE_BUG",
]

EPOCH = datetime(2026, 11, 2, 0, 0, 0, tzinfo=UTC)
CHECKPOINT_EVERY = 500
NOISE = "noise"  # cause id of benign noise and progress lines


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Template:
    name: str
    category: str
    cause_class: str  # what the text alone says (the "known meaning")
    kind: str  # the reporter's label
    render: Callable[[random.Random, dict[str, Any]], str]


def _ts_glog(rng: random.Random, c: dict[str, Any]) -> str:
    t: datetime = c["dt"]
    return f"{t.month}{t.day:02d} {t:%H:%M:%S}.{rng.randrange(10**9):09d}"


def _pci(c: dict[str, Any]) -> str:
    return c["pci"]


def _watchdog(rng, c):
    seq = c.get("seq", rng.randrange(1000, 900000))
    numel = c.get("numel", rng.choice([466119168, 544997376, 9801523, 268435456]))
    op = c.get("op", "ALLREDUCE")
    tmo = c.get("timeout_ms", 600000)
    r = c["rank"]
    return (
        f"[rank{r}]:[E{_ts_glog(rng, c)} ProcessGroupNCCL.cpp:607] [Rank {r}] Watchdog caught collective "
        f"operation timeout: WorkNCCL(SeqNum={seq}, OpType={op}, NumelIn={numel}, NumelOut={numel}, "
        f"Timeout(ms)={tmo}) ran for {tmo + rng.randrange(10, 900)} milliseconds before timing out."
    )


def _xid79(rng, c):
    return (
        f"[{c['uptime']:.6f}] NVRM: Xid (PCI:{_pci(c)}): 79, pid={rng.randrange(1000, 4000000)}, "
        f"name=python3, GPU has fallen off the bus."
    )


def _xid48(rng, c):
    return (
        f"[{c['uptime']:.6f}] NVRM: Xid (PCI:{_pci(c)}): 48, pid={rng.randrange(1000, 4000000)}, "
        f"name=python3, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer "
        f"at partition {rng.randrange(8)}, subpartition {rng.randrange(2)}."
    )


def _xid63(rng, c):
    return (
        f"NVRM: Xid (PCI:{_pci(c)}): 63, pid={rng.randrange(1000, 4000000)}, Row Remapper: New row marked "
        f"for remapping, reset gpu to activate."
    )


def _xid94(rng, c):
    return (
        f"[{c['uptime']:.6f}] NVRM: Xid (PCI:{_pci(c)}): 94, pid={rng.randrange(1000, 4000000)}, "
        f"name=python3, Contained: SM (0x1). RST: No, D-RST: No"
    )


def _cuda_unknown(rng, c):
    return (
        f"[default{c['gpu_idx']}]:terminate called after throwing an instance of 'c10::CUDAError'\n"
        f"[default{c['gpu_idx']}]:  what():  CUDA error: unknown error\n"
        f"[default{c['gpu_idx']}]:Exception raised from query at ../aten/src/ATen/cuda/CUDAEvent.h:95 "
        f"(most recent call first):\n"
        f"[default{c['gpu_idx']}]:frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x42 "
        f"(0x{rng.randrange(16**12):012x} in /opt/conda/lib/python3.11/site-packages/torch/lib/libc10.so)"
    )


def _ecc_uncorrectable(rng, c):
    return (
        "Traceback (most recent call last):\n"
        f'  File "/workspace/{c["job"]}/train.py", line 412, in train_step\n'
        "    loss.backward()\n"
        "RuntimeError: CUDA error: uncorrectable ECC error encountered\n"
        "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace "
        "below might be incorrect."
    )


def _ima(rng, c):
    r = c["rank"]
    return (
        f"[rank{r}]:[E{_ts_glog(rng, c)} ProcessGroupNCCL.cpp:1896] [PG ID {rng.randrange(4)} PG GUID "
        f"{rng.randrange(8)} Rank {r}] Process group watchdog thread terminated with exception: CUDA error: "
        "an illegal memory access was encountered\n"
        "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace "
        "below might be incorrect.\n"
        "For debugging consider passing CUDA_LAUNCH_BLOCKING=1\n"
        "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions."
    )


def _nan_loss(rng, c):
    return (
        f" iteration {c['step']:>8}/ {c['total_steps']:>8} | consumed samples: {c['step'] * 2048:>12} | "
        f"lm loss: nan | grad norm: nan | loss scale: 1.0 | number of skipped iterations: "
        f"{rng.randrange(1, 4):>3} | number of nan iterations: {rng.randrange(1, 4):>3} |\n"
        f"ERROR: found NaN in loss at iteration {c['step']}, aborting (rank {c['rank']})"
    )


def _device_assert(rng, c):
    b, t = rng.randrange(512), rng.randrange(128)
    line = (
        "../aten/src/ATen/native/cuda/IndexKernel.cu:92: operator(): block: [{b},0,0], thread: [{t},0,0] "
        'Assertion `-sizes[i] <= index && index < sizes[i] && "index out of bounds"` failed.'
    )
    lines = [line.format(b=b, t=t + k) for k in range(rng.randrange(2, 5))]
    return "\n".join(lines) + (
        "\nRuntimeError: CUDA error: device-side assert triggered\n"
        "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions."
    )


def _grad_spike(rng, c):
    return (
        f"WARNING:megatron.training:grad norm spike at iteration {c['step']}: grad norm "
        f"{rng.uniform(80, 9000):.1f} (running mean {rng.uniform(0.1, 0.4):.3f}), skipping update on rank {c['rank']}"
    )


def _ib_completion(rng, c):
    a = ".".join(str(rng.randrange(1, 255)) for _ in range(4))
    return (
        f"{c['host']}:{rng.randrange(1000, 90000)}:{rng.randrange(1000, 90000)} [{c['gpu_idx']}] "
        f"transport/net_ib.cc:1696 NCCL WARN NET/IB : Got completion from peer {a}<{rng.randrange(1024, 65535)}> "
        f"with status=12 opcode=0 len=0 vendor err 129 (Recv) localGid ::ffff:{a} remoteGids::ffff:{a}\n"
        f"{c['host']}:{rng.randrange(1000, 90000)}:{rng.randrange(1000, 90000)} [{c['gpu_idx']}] NCCL INFO "
        "transport/net.cc:1302 -> 6"
    )


def _zlib_shard(rng, c):
    return (
        "Traceback (most recent call last):\n"
        '  File "/opt/conda/lib/python3.11/site-packages/torch/utils/data/_utils/worker.py", line 308, in _worker_loop\n'
        "    data = fetcher.fetch(index)\n"
        f'  File "/workspace/{c["job"]}/data/indexed_dataset.py", line 233, in __getitem__\n'
        "    return self._decompress(buf)\n"
        f"zlib.error: Error -3 while decompressing data: invalid stored block lengths "
        f"(shard /data/corpus/shard-{c['shard']:05d}.bin, offset {c['offset']})"
    )


def _oom_kill(rng, c):
    sid = rng.randrange(100000, 999999)
    return (
        f"slurmstepd: error: Detected {rng.randrange(1, 4)} oom-kill event(s) in StepId={sid}.0 cgroup. "
        "Some of your processes may have been killed by the cgroup out-of-memory handler."
    )


def _dl_killed(rng, c):
    return f"RuntimeError: DataLoader worker (pid {rng.randrange(1000, 4000000)}) is killed by signal: Killed. "


def _nccl_unhandled(rng, c):
    return (
        "torch.distributed.DistBackendError: NCCL error in: /opt/pytorch/pytorch/torch/csrc/distributed/c10d/"
        f"NCCLUtils.hpp:{rng.choice([275, 317])}, unhandled cuda error (run with NCCL_DEBUG=INFO for details), "
        f"NCCL version {c['versions'].get('nccl', '2.21.5')}\n"
        "ncclUnhandledCudaError: Call to CUDA function failed.\n"
        "Last error:\n"
        f"Cuda failure {rng.choice([700, 719])} 'an illegal memory access was encountered'"
    )


def _cublas(rng, c):
    return (
        "RuntimeError: CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasGemmEx( handle, opa, "
        "opb, m, n, k, &falpha, a, CUDA_R_16BF, lda, b, CUDA_R_16BF, ldb, &fbeta, c, CUDA_R_16BF, ldc, "
        "CUDA_R_32F, CUBLAS_GEMM_DEFAULT_TENSOR_OP)`"
    )


def _xid119(rng, c):
    return (
        f"[{c['uptime']:.6f}] NVRM: Xid (PCI:{_pci(c)}): 119, pid={rng.randrange(1000, 4000000)}, name=python3, "
        f"Timeout after 6s of waiting for RPC response from GPU{c['gpu_idx']} GSP! Expected function 76 "
        f"(GSP_RM_CONTROL) (0x{rng.randrange(16**8):08x} 0x{rng.randrange(16**4):04x})."
    )


def _nfs_stall(rng, c):
    return f"[{c['uptime']:.6f}] nfs: server {c.get('server', 'storage01')} not responding, still trying"


def _time_limit(rng, c):
    return (
        f"slurmstepd: error: *** JOB {c.get('slurm_id', rng.randrange(100000, 999999))} ON {c['first_host']} "
        f"CANCELLED AT {c['dt']:%Y-%m-%dT%H:%M:%S} DUE TO TIME LIMIT ***"
    )


def _progress(rng, c):
    return (
        f"[default0]: iteration {c['step']:>8}/ {c['total_steps']:>8} | elapsed time per iteration (s): "
        f"{rng.uniform(1.8, 2.4):.2f} | learning rate: {rng.uniform(1e-5, 3e-4):.3E} | lm loss: "
        f"{rng.uniform(1.9, 2.6):.6E} | grad norm: {rng.uniform(0.1, 0.4):.3f} | TFLOPs: {rng.uniform(380, 420):.2f} |"
    )


def _socket_refused(rng, c):
    a = ".".join(str(rng.randrange(1, 255)) for _ in range(4))
    return (
        f"{c['host']}:{rng.randrange(1000, 90000)}:{rng.randrange(1000, 90000)} [{c['gpu_idx']}] "
        f"misc/socket.cc:484 NCCL WARN socketStartConnect: Connect to {a}<{rng.randrange(1024, 65535)}> failed : "
        "Connection refused"
    )


def _overflow(rng, c):
    s = 2 ** rng.randrange(10, 17)
    return (
        f"[{c['dt']:%Y-%m-%d %H:%M:%S},{rng.randrange(1000):03d}] [INFO] [loss_scaler.py:183:update_scale] "
        f"[deepspeed] OVERFLOW! Rank {c['rank']} Skipping step. Attempted loss scale: {s}, reducing to {s // 2}"
    )


def _sigterm(rng, c):
    return (
        "WARNING:torch.distributed.elastic.multiprocessing.api:Sending process "
        f"{rng.randrange(1000, 4000000)} closing signal SIGTERM"
    )


def _ckpt_slow(rng, c):
    return (
        f"WARNING:checkpointing: saving checkpoint at iteration {c['step']} took {rng.uniform(60, 400):.1f} s "
        f"(expected < 45 s) on rank {c['rank']}"
    )


def _socket_timeout(rng, c):
    a = ".".join(str(rng.randrange(1, 255)) for _ in range(4))
    return (
        f"[W{_ts_glog(rng, c)} socket.cpp:{rng.choice([464, 697])}] [c10d] The client socket has timed out after "
        f"{rng.choice([60, 300, 900])}s while trying to connect to ({a}, {rng.randrange(20000, 40000)})."
    )


_T = [
    Template("nccl_watchdog_timeout", "nccl_watchdog_timeout", "unknown", "hang", _watchdog),
    Template("xid79_fallen_off_bus", "xid", "hardware", "hardware", _xid79),
    Template("xid48_dbe", "xid", "hardware", "hardware", _xid48),
    Template("xid63_row_remap", "xid", "hardware", "hardware", _xid63),
    Template("xid94_contained", "xid", "hardware", "hardware", _xid94),
    Template("cuda_unknown_error", "cuda_runtime", "unknown", "crash", _cuda_unknown),
    Template("cuda_uncorrectable_ecc", "cuda_runtime", "hardware", "crash", _ecc_uncorrectable),
    Template("cuda_illegal_memory_access", "cuda_runtime", "software", "crash", _ima),
    Template("nan_loss", "loss_instability", "software", "nan", _nan_loss),
    Template("device_side_assert", "cuda_runtime", "software", "crash", _device_assert),
    Template("grad_norm_spike", "loss_instability", "software", "nan", _grad_spike),
    Template("ib_completion_error", "infiniband_rdma", "network", "network", _ib_completion),
    Template("dataloader_zlib_error", "dataloader", "data", "crash", _zlib_shard),
    Template("host_oom_kill", "host_oom", "infrastructure", "crash", _oom_kill),
    Template("dataloader_worker_killed", "dataloader", "software", "crash", _dl_killed),
    Template("nccl_unhandled_cuda_error", "nccl_error", "software", "crash", _nccl_unhandled),
    Template("cublas_execution_failed", "cuda_runtime", "software", "crash", _cublas),
    Template("xid119_gsp_timeout", "xid", "hardware", "hardware", _xid119),
    Template("nfs_not_responding", "storage", "infrastructure", "hang", _nfs_stall),
    # A scheduler line about the whole job (host field: the job's SLURM host list): benign.
    Template("slurm_time_limit", "scheduler", "unknown", "scheduler", _time_limit),
    # An iteration log line a job forwarded (kind "log"): benign noise the analysis must not dress
    # up as a cause. (Kind "progress" would make it a progress report, kept as exposure.)
    Template("progress", "progress", "unknown", "log", _progress),
    Template("nccl_socket_refused", "nccl_warn", "network", "warning", _socket_refused),
    Template("deepspeed_overflow", "loss_instability", "software", "warning", _overflow),
    Template("elastic_sigterm", "launcher_elastic", "unknown", "warning", _sigterm),
    Template("checkpoint_slow", "checkpoint_io", "infrastructure", "warning", _ckpt_slow),
    Template("c10d_socket_timeout", "rendezvous_store", "network", "warning", _socket_timeout),
]
TEMPLATES: dict[str, Template] = {t.name: t for t in _T}
NOISE_TEMPLATES = (
    "nccl_socket_refused",
    "deepspeed_overflow",
    "elastic_sigterm",
    "checkpoint_slow",
    "c10d_socket_timeout",
    "xid63_row_remap",
)


# --------------------------------------------------------------------------- shapes

NAMINGS = ("classic", "ip", "rack", "slurm")
RESTARTS = ("same", "suffix", "requeue", "elastic")
GPU_IDS = ("index", "pci_kernel", "pci")


@dataclass(frozen=True)
class Shapes:
    """How one fleet names its hosts, restarts its jobs and versions its software; drawn per seed
    (:func:`draw_shapes`) and recorded in the truth, so the bench can score per shape.

    - ``naming``: ``classic`` (``c1-gpu0007``) | ``ip`` (one /24 per leaf switch) | ``rack``
      (``c1-r03-n07``, one rack per leaf) | ``slurm`` (``node001``; a leaf is an aligned block of node
      numbers).
    - ``fqdn_kernel``: kernel lines (NVRM Xid, nfs) name the host by its FQDN, all others by the
      short name (not with ``ip``).
    - ``nodelist_jobs``: job-level scheduler lines carry the job's SLURM host list in ``host``.
    - ``gpu_ids``: ``index`` (``GPU3``) | ``pci_kernel`` (kernel lines give the PCI bus id) |
      ``pci`` (every line with a GPU gives the bus id).
    - ``restarts``: ``same`` (one job id for every attempt) | ``suffix`` (``-r2``, ``-r3``) |
      ``requeue`` (a new SLURM job id per attempt; the reporter sends ``attributes.run_id`` and
      ``attempt``) | ``elastic`` (a new torchelastic run id per restart, same attributes).
    - ``watchdog_ms``: the NCCL timeouts jobs run with (each job draws one; storms arrive that
      long after the hang, and the text states it).
    - ``single_bug``: ``one_dim`` (since torch 2.3.0) | ``torch_cuda_pair`` (only torch 2.3.1 on
      CUDA 12.6: other torches on 12.6 and torch 2.3.1 on other CUDAs are clean).
    - ``driver_per_cluster``: the driver version stands for the cluster (a confounder).
    - ``data_rank_moves``: after a restart another rank reads the corrupt shard.
    - ``mix``: ``shares`` (each cause's interruptions its share of Llama 3's) | ``legacy``.
    """

    naming: str = "classic"
    fqdn_kernel: bool = False
    nodelist_jobs: bool = False
    gpu_ids: str = "index"
    restarts: str = "same"
    watchdog_ms: tuple[int, ...] = (600000,)
    single_bug: str = "one_dim"
    driver_per_cluster: bool = False
    data_rank_moves: bool = False
    mix: str = "shares"  # shares (Llama 3 interruption shares) | legacy (counts per kind, the mix before shapes)


CLASSIC = Shapes(mix="legacy")
"""The fleet before shapes existed: ``c1-gpu0007`` names, one job id per job, GPU indices, the old
cause mix (no storage stall, hang or GSP fault; the single bug frequent)."""


def draw_shapes(seed: int) -> Shapes:
    """The shapes of seed ``seed``, from a generator of their own (the rest of the scenario does not
    shift when a shape is added)."""
    rng = random.Random(f"shapes:{seed}")
    naming = rng.choice(NAMINGS)
    return Shapes(
        naming=naming,
        fqdn_kernel=naming != "ip" and rng.random() < 0.5,
        nodelist_jobs=naming != "ip" and rng.random() < 0.6,
        gpu_ids=rng.choice(GPU_IDS),
        restarts=rng.choice(RESTARTS),
        watchdog_ms=rng.choice([(600000,), (1800000,), (600000, 1800000)]),
        single_bug=rng.choice(["one_dim", "torch_cuda_pair"]),
        driver_per_cluster=rng.random() < 0.6,
        data_rank_moves=rng.random() < 0.5,
    )


# Shares of unexpected interruptions in Meta's Llama 3 405B run (taxonomy.md section 1, from the
# counts of the 419): GPU 268 (faulty GPU 148, HBM3 72, SRAM 19, GSP 17, SDC 6, thermal 6),
# software and dependency 56, network 35, unplanned host maintenance 32 + host hardware 21,
# unknown (NCCL watchdog timeouts) 7. Each cause gets its share of the scenario's interruption
# budget (its hazard is set from the exposure it will see), so the mix follows the shares and not
# the number of causes. Mapping: faulty GPU -> fallen off the bus (80) and illegal memory access
# with contained SRAM errors (68 + 19); HBM + SDC -> double-bit ECC (78); GSP + thermal -> GSP
# timeout (23); host maintenance + host hardware -> storage stalls hitting every job of a cluster
# (53); unknown watchdog timeouts -> a software hang with no precursor (7). Data faults are not in
# the table (they are the user's): a few per scenario, each recurring 3-5 times.
GPU_SHARES = {"fallen_off_bus": 80, "bad_gpu_ima": 87, "hbm_dbe": 78, "gsp_timeout": 23}
SHARES = {"gpu": 268, "software": 56, "network": 35, "infrastructure": 53, "hang": 7}
SHARE_TOTAL = 419
SINGLE_BUG = "sw-torchsum"
SINGLE_BUG_MIN_INTERRUPTIONS = 30  # the single bug must show all four symptoms a few times each

# --------------------------------------------------------------------------- fleet and causes


@dataclass
class Cause:
    id: str
    kind: str  # localised_hardware | switch | regression | data_step | leak | storage | hang
    cause_class: str
    title: str
    templates: list[str]
    scope: dict[str, Any] = field(default_factory=dict)
    hazard: float = 0.0  # failures per step of exposure
    shape: str = ""  # what the bench reports per: e.g. "storm:hardware_precursor", "single_bug:torch_cuda_pair"
    target: float = 0.0  # interruptions it should cause (its share of the budget)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "cause_class": self.cause_class,
            "title": self.title,
            "templates": list(self.templates),
            "scope": self.scope,
            "shape": self.shape or self.kind,
        }


@dataclass
class Scenario:
    seed: int
    size: str
    events: list[dict[str, Any]]
    topology: dict[str, str]
    causes: list[dict[str, Any]]
    event_cause: dict[str, str]  # event_id -> cause id ("noise" for benign)
    event_template: dict[str, str]  # event_id -> template name (a stand-in grouping for tests)
    shapes: dict[str, Any] = field(default_factory=dict)  # the Shapes drawn for this seed

    @property
    def truth(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "size": self.size,
            "causes": self.causes,
            "event_cause": self.event_cause,
            "event_template": self.event_template,
            "topology": self.topology,
            "shapes": self.shapes,
            "single_bug": SINGLE_BUG if any(c["id"] == SINGLE_BUG for c in self.causes) else None,
        }


@dataclass(frozen=True)
class SizeSpec:
    clusters: int
    hosts_per_cluster: int
    hosts_per_switch: int
    jobs: int
    job_hosts: tuple[int, int]
    steps: tuple[int, int]
    heartbeat_every: int
    hw: int
    switch: int
    data: int
    extra_regressions: int
    noise_per_template: tuple[int, int]
    hazard_scale: float
    big_job_hosts: int = 0  # one job over this many hosts (the 100k-rank-style storm)
    interruptions: int = 60  # the budget the shares are taken of


SIZES: dict[str, SizeSpec] = {
    "small": SizeSpec(2, 16, 8, 8, (4, 8), (12000, 20000), 4000, 3, 1, 1, 0, (4, 10), 1.0, 0, 120),
    "medium": SizeSpec(4, 48, 8, 28, (6, 24), (15000, 30000), 2500, 7, 2, 2, 1, (15, 40), 1.0, 0, 300),
    "large": SizeSpec(4, 256, 16, 60, (8, 40), (20000, 40000), 3000, 12, 3, 3, 1, (40, 120), 1.0, 256, 1000),
}

CODE_VERSIONS = ["v1.2", "v1.3", "v1.4", "v1.5"]
TORCH_VERSIONS = ["2.2.2", "2.3.0", "2.3.1"]
NCCL_VERSIONS = ["2.19.3", "2.20.5", "2.21.5"]
CUDA_VERSIONS = ["12.1", "12.4", "12.6"]
DRIVER_VERSIONS = ["535.161.08", "550.54.15", "550.90.07", "560.35.03"]
SLURM_PREFIXES = ["node", "gpu", "dgx", "hgx"]
KERNEL_TEMPLATES = frozenset(
    {
        "xid79_fallen_off_bus",
        "xid48_dbe",
        "xid63_row_remap",
        "xid94_contained",
        "xid119_gsp_timeout",
        "nfs_not_responding",
    }
)


@dataclass
class Job:
    id: str  # the run's name; the job id an event carries depends on the restart convention
    cluster: str
    hosts: list[str]
    start: float  # seconds since EPOCH
    total_steps: int
    step_s: float
    phases: list[tuple[int, str, dict[str, str]]]  # (from_step, code_version, versions)
    timeout_ms: int = 600000
    attempt: int = 0  # restarts so far
    attempt_ids: list[str] = field(default_factory=list)
    attempt_starts: list[float] = field(default_factory=list)  # when each attempt after the first began

    def attempt_at(self, t: float) -> int:
        return bisect.bisect_right(self.attempt_starts, t)

    def version_at(self, step: int) -> tuple[str, dict[str, str]]:
        cur = self.phases[0]
        for ph in self.phases:
            if ph[0] <= step:
                cur = ph
        return cur[1], cur[2]

    def steps_where(self, versions: dict[str, list[str]]) -> int:
        """Steps of this job run under versions matching every dimension given."""
        n = 0
        for i, (s0, _code, vs) in enumerate(self.phases):
            s1 = self.phases[i + 1][0] if i + 1 < len(self.phases) else self.total_steps
            if all(vs.get(d) in vals for d, vals in versions.items()):
                n += s1 - s0
        return n

    def steps_under_code(self, codes: list[str]) -> int:
        n = 0
        for i, (s0, code, _vs) in enumerate(self.phases):
            s1 = self.phases[i + 1][0] if i + 1 < len(self.phases) else self.total_steps
            if code in codes:
                n += s1 - s0
        return n


def _pick_sizes(n: int | str) -> tuple[str, SizeSpec]:
    if isinstance(n, str):
        return n, SIZES[n]
    # an int: the event count wanted, roughly; pick the nearest named size
    name = "small" if n <= 6000 else "medium" if n <= 50000 else "large"
    return name, SIZES[name]


def compress_nodelist(hosts: list[str]) -> str:
    """SLURM's host list for ``hosts`` (``node[001-004,007]``): names sharing a prefix and a numeric
    tail of one width fold into brackets; others are listed as they are."""
    fam: dict[tuple[str, int], list[int]] = {}
    order: list[Any] = []
    for h in hosts:
        k = len(h)
        while k > 0 and h[k - 1].isdigit():
            k -= 1
        if k == len(h):
            order.append(h)
            continue
        key = (h[:k], len(h) - k)
        if key not in fam:
            fam[key] = []
            order.append(key)
        fam[key].append(int(h[k:]))
    parts = []
    for item in order:
        if isinstance(item, str):
            parts.append(item)
            continue
        pre, w = item
        nums = sorted(set(fam[item]))
        if len(nums) == 1:
            parts.append(f"{pre}{nums[0]:0{w}d}")
            continue
        runs, a, b = [], nums[0], nums[0]
        for n in nums[1:]:
            if n == b + 1:
                b = n
                continue
            runs.append((a, b))
            a = b = n
        runs.append((a, b))
        body = ",".join(f"{x:0{w}d}" if x == y else f"{x:0{w}d}-{y:0{w}d}" for x, y in runs)
        parts.append(f"{pre}[{body}]")
    return ",".join(parts)


class _Builder:
    def __init__(self, seed: int, size: str | int, shapes: Shapes, rate_fix: dict[str, float] | None = None):
        self.rng = random.Random(seed)
        self.id_rng = random.Random(f"ids:{seed}")  # job ids of restarts, apart from the failure draws
        self.seed = seed
        self.shapes = shapes
        self.size_name, self.spec = _pick_sizes(size)
        self.events: list[dict[str, Any]] = []
        self.event_cause: dict[str, str] = {}
        self.event_template: dict[str, str] = {}
        self.pci: dict[tuple[str, int], str] = {}
        self.uptime0: dict[str, float] = {}
        self.fqdn: dict[str, str] = {}
        self.next_slurm_id = 400000 + self.id_rng.randrange(100000)
        self.interruptions: dict[str, int] = {}  # cause id -> times it stopped a job
        # per cause, a factor on its rate from a first pass (restarts replay steps, so the exposure a
        # cause sees is more than the plan's; the second pass corrects for it)
        self.rate_fix = rate_fix or {}
        self.render = rate_fix is not None

    # -- fleet
    def host_names(self, c: int, cname: str) -> list[tuple[str, str]]:
        """(host, leaf switch) for cluster number ``c``."""
        sp, naming = self.spec, self.shapes.naming
        out = []
        for i in range(sp.hosts_per_cluster):
            leaf = i // sp.hosts_per_switch
            pos = i % sp.hosts_per_switch
            if naming == "ip":
                h = f"10.{c + 1}.{leaf}.{11 + pos}"
            elif naming == "rack":
                h = f"{cname}-r{leaf + 1:02d}-n{pos + 1:02d}"
            elif naming == "slurm":
                h = f"{SLURM_PREFIXES[c % len(SLURM_PREFIXES)]}{i + 1:03d}"
            else:
                h = f"{cname}-gpu{i:04d}"
            out.append((h, f"{cname}-leaf{leaf:02d}"))
        return out

    def build_fleet(self) -> None:
        sp, rng, shp = self.spec, self.rng, self.shapes
        self.clusters: dict[str, list[str]] = {}
        self.topology: dict[str, str] = {}
        pci_long = self.id_rng.random() < 0.5  # nvidia-smi's 8-digit domain or lspci's 4-digit one
        buses = ["18", "2a", "3a", "5d", "9a", "ab", "ba", "db"]
        for c in range(sp.clusters):
            cname = f"c{c + 1}"
            named = self.host_names(c, cname)
            self.clusters[cname] = [h for h, _ in named]
            for h, leaf in named:
                self.topology[h] = leaf
                self.uptime0[h] = rng.uniform(1e5, 5e6)
                self.fqdn[h] = f"{h}.{cname}.example.com"
                for g in range(8):
                    self.pci[(h, g)] = f"0000:{buses[g]}:00"
        self.pci_spelling = (lambda p: "0000" + p + ".0") if pci_long else (lambda p: p + ".0")
        drivers = {cn: DRIVER_VERSIONS[i % len(DRIVER_VERSIONS)] for i, cn in enumerate(self.clusters)}
        horizon = 6 * 86400.0
        self.jobs: list[Job] = []
        for j in range(sp.jobs):
            cname = rng.choice(list(self.clusters))
            pool = self.clusters[cname]
            if j == 0 and sp.big_job_hosts:
                cname = "c1"
                pool = self.clusters[cname]
                nh = min(sp.big_job_hosts, len(pool))
            else:
                nh = rng.randint(*sp.job_hosts)
            start_idx = rng.randrange(len(pool))
            hosts = [pool[(start_idx + k) % len(pool)] for k in range(nh)]
            total = rng.randint(*sp.steps)
            start = rng.uniform(0, horizon * 0.5)
            # versions: newer builds more likely later; drawn independently per dimension
            frac = start / horizon
            code_i = min(len(CODE_VERSIONS) - 1, int(rng.random() * 3 + frac * 2))
            torch_i = rng.choice([0, 0, 1, 1, 2]) if rng.random() < 0.8 else rng.randrange(3)
            nccl_i = rng.randrange(3)
            cuda = rng.choice(CUDA_VERSIONS)
            driver = drivers[cname] if shp.driver_per_cluster else rng.choice(DRIVER_VERSIONS)
            versions = {"torch": TORCH_VERSIONS[torch_i], "nccl": NCCL_VERSIONS[nccl_i], "cuda": cuda, "driver": driver}
            phases = [(0, CODE_VERSIONS[code_i], versions)]
            if rng.random() < 0.3 and code_i + 1 < len(CODE_VERSIONS):
                phases.append((total // 2, CODE_VERSIONS[code_i + 1], dict(phases[0][2])))
            self.jobs.append(
                Job(
                    f"{cname}-run{j:03d}",
                    cname,
                    hosts,
                    start,
                    total,
                    rng.uniform(1.6, 2.4),
                    phases,
                    timeout_ms=rng.choice(shp.watchdog_ms),
                )
            )
        # make sure the torch onset has exposure on both sides
        torch_seen = {ph[2]["torch"] for jb in self.jobs for ph in jb.phases}
        if "2.2.2" not in torch_seen:
            self._set_versions(self.jobs[-1], torch="2.2.2")
        if not torch_seen & {"2.3.0", "2.3.1"}:
            self._set_versions(self.jobs[-2], torch="2.3.0")
        if shp.single_bug == "torch_cuda_pair":
            # the pair, and each half of it without the other, all run
            self._set_versions(self.jobs[-3], torch="2.3.1", cuda="12.6")
            self._set_versions(self.jobs[-4], torch="2.3.1", cuda="12.4")
            self._set_versions(self.jobs[-5], torch="2.3.0", cuda="12.6")

    @staticmethod
    def _set_versions(jb: Job, **dims: str) -> None:
        for ph in jb.phases:
            ph[2].update(dims)

    # -- causes
    def build_causes(self) -> None:
        sp, rng, shp = self.spec, self.rng, self.shapes
        self.causes: list[Cause] = []
        budget = sp.interruptions
        steps_on_host: dict[str, int] = {}
        for jb in self.jobs:
            for h in jb.hosts:
                steps_on_host[h] = steps_on_host.get(h, 0) + jb.total_steps
        used = sorted(steps_on_host)
        # GPU faults: the share of all GPU interruptions, split by kind weight over the bad hosts
        n_hw = max(2, sp.hw + rng.randint(-1, 1))
        bad = rng.sample(used, min(n_hw, len(used)))
        kinds = list(GPU_SHARES)
        picked = [
            kinds[i] if i < len(kinds) else rng.choices(kinds, [GPU_SHARES[k] for k in kinds])[0]
            for i in range(len(bad))
        ]
        weight = sum(GPU_SHARES[k] for k in picked)
        templates = {
            "fallen_off_bus": ["xid79_fallen_off_bus", "cuda_unknown_error", "nccl_watchdog_timeout"],
            "hbm_dbe": ["xid48_dbe", "cuda_uncorrectable_ecc", "xid63_row_remap"],
            "bad_gpu_ima": ["cuda_illegal_memory_access", "xid94_contained"],
            "gsp_timeout": ["xid119_gsp_timeout", "nccl_watchdog_timeout"],
        }
        shape_of = {
            "fallen_off_bus": "storm:hardware_precursor",
            "gsp_timeout": "storm:hardware_precursor",
            "hbm_dbe": "gpu:hbm_dbe",
            "bad_gpu_ima": "gpu:one_text_two_causes",
        }
        for i, (h, k) in enumerate(zip(bad, picked, strict=True)):
            gpu = rng.randrange(8)
            target = SHARES["gpu"] / SHARE_TOTAL * budget * GPU_SHARES[k] / weight
            self.causes.append(
                Cause(
                    f"hw-{i}-{k}",
                    "localised_hardware",
                    "hardware",
                    f"{k} on {h} GPU {gpu}",
                    templates[k],
                    {"host": h, "gpu": gpu},
                    hazard=self._hazard(target, steps_on_host[h]),
                    shape=shape_of[k],
                    target=target,
                )
            )
        # switches: the network share, over the switches, from the steps their jobs run in the window
        switches = sorted({self.topology[h] for h in used})
        cand = [s for s in switches if any(sum(self.topology[h] == s for h in jb.hosts) >= 2 for jb in self.jobs)]
        chosen = rng.sample(cand, min(sp.switch, len(cand)))
        for i, s in enumerate(chosen):
            t0 = rng.uniform(0.1, 0.6) * 6 * 86400
            t1 = t0 + rng.uniform(8, 20) * 3600
            exposure = 0.0
            for jb in self.jobs:
                under = sum(self.topology[h] == s for h in jb.hosts)
                if under:
                    lo, hi = max(t0, jb.start), min(t1, jb.start + jb.total_steps * jb.step_s)
                    exposure += max(0.0, hi - lo) / jb.step_s * min(1.0, under / 2)
            target = SHARES["network"] / SHARE_TOTAL * budget / len(chosen)
            self.causes.append(
                Cause(
                    f"net-{i}-switch",
                    "switch",
                    "network",
                    f"leaf switch {s} flapping",
                    ["ib_completion_error", "nccl_watchdog_timeout"],
                    {"switch": s, "t0": t0, "t1": t1},
                    hazard=self._hazard(target, exposure),
                    shape="storm:network",
                    target=target,
                )
            )
        # software: the single bug (never below its floor), other regressions, the leak
        sw = SHARES["software"] / SHARE_TOTAL * budget
        if shp.single_bug == "torch_cuda_pair":
            scope = {"versions": {"torch": ["2.3.1"], "cuda": ["12.6"]}}
            title = "torch.sum reduction bug under torch 2.3.1 with CUDA 12.6"
        else:
            scope = {"versions": {"torch": ["2.3.0", "2.3.1"]}}
            title = "torch.sum reduction bug since torch 2.3.0"
        exposure = sum(jb.steps_where(scope["versions"]) for jb in self.jobs)
        self.causes.append(
            Cause(
                SINGLE_BUG,
                "regression",
                "software",
                title,
                ["nan_loss", "cuda_illegal_memory_access", "device_side_assert", "grad_norm_spike"],
                scope,
                hazard=self._hazard(target := max(SINGLE_BUG_MIN_INTERRUPTIONS, sw * 26 / 56), exposure),
                shape=f"single_bug:{shp.single_bug}",
                target=target,
            )
        )
        leak_codes = ["v1.4", "v1.5"]
        exposure = sum(jb.steps_under_code(leak_codes) for jb in self.jobs)
        target = max(3.0, sw * 15 / 56)
        steps_to_oom = int(min(12000, max(700, exposure / target)))
        self.causes.append(
            Cause(
                "sw-leak",
                "leak",
                "software",
                "host memory leak in data pipeline since code v1.4",
                ["host_oom_kill", "dataloader_worker_killed"],
                {"code_version": leak_codes, "steps_to_oom": steps_to_oom},
                shape="leak",
                target=target,
            )
        )
        for i in range(sp.extra_regressions):
            scope = {"versions": {"nccl": ["2.21.5"]}}
            exposure = sum(jb.steps_where(scope["versions"]) for jb in self.jobs)
            self.causes.append(
                Cause(
                    f"sw-nccl-{i}",
                    "regression",
                    "software",
                    "NCCL 2.21.5 regression",
                    ["nccl_unhandled_cuda_error", "cublas_execution_failed"],
                    scope,
                    hazard=self._hazard(target := max(3.0, sw * 15 / 56 / sp.extra_regressions), exposure),
                    shape="regression:one_dim",
                    target=target,
                )
            )
        # a collective hang with no precursor: a deadlock under one code version
        codes = sorted({ph[1] for jb in self.jobs for ph in jb.phases})
        code = rng.choice(codes)
        exposure = sum(jb.steps_under_code([code]) for jb in self.jobs)
        self.causes.append(
            Cause(
                "sw-hang",
                "hang",
                "software",
                f"collective hang (dataloader deadlock at eval) in code {code}",
                ["nccl_watchdog_timeout"],
                {"code_version": [code]},
                hazard=self._hazard(target := max(3.0, SHARES["hang"] / SHARE_TOTAL * budget), exposure),
                shape="storm:software_hang",
                target=target,
            )
        )
        # storage stalls: every job of one cluster at once, until the infrastructure share is spent
        cluster = rng.choice(sorted(self.clusters))
        target = SHARES["infrastructure"] / SHARE_TOTAL * budget
        times: list[float] = []
        hit = 0.0
        for _ in range(12):
            if hit >= target or len(times) >= 8:
                break
            ts = rng.uniform(0.05, 0.7) * 6 * 86400
            running = sum(
                1 for jb in self.jobs if jb.cluster == cluster and jb.start < ts < jb.start + jb.total_steps * jb.step_s
            )
            if running >= 1:
                times.append(ts)
                hit += running * 0.7  # jobs delayed by their restarts are not all still running then
        if times:
            self.causes.append(
                Cause(
                    "infra-storage",
                    "storage",
                    "infrastructure",
                    f"storage stall across cluster {cluster}",
                    ["nfs_not_responding", "nccl_watchdog_timeout"],
                    {
                        "cluster": cluster,
                        "times": sorted(times),
                        "precursor": [rng.random() < 0.6 for _ in times],
                        "server": f"{cluster}-nfs{rng.randrange(1, 4):02d}",
                    },
                    shape="storm:storage",
                )
            )
        for i in range(sp.data):
            jb = rng.choice([j for j in self.jobs if j.total_steps > 6000])
            step = rng.randrange(2000, jb.total_steps - 1000)
            if step % CHECKPOINT_EVERY == 0:
                step += 7
            self.causes.append(
                Cause(
                    f"data-{i}-shard",
                    "data_step",
                    "data",
                    f"corrupt shard read by {jb.id} at step {step}",
                    ["dataloader_zlib_error", "nan_loss"],
                    {
                        "job": jb.id,
                        "step": step,
                        "repeats": rng.randint(3, 5),
                        "shard": rng.randrange(99999),
                        "rank": rng.randrange(len(jb.hosts) * 8),
                    },
                    shape="data_step:rank_moves" if shp.data_rank_moves else "data_step:same_rank",
                )
            )

    def build_causes_legacy(self) -> None:
        """The cause mix before shapes: counts per kind from the size, hazards drawn per cause."""
        sp, rng = self.spec, self.rng
        self.causes = []
        busy_hosts: dict[str, int] = {}
        for jb in self.jobs:
            for h in jb.hosts:
                busy_hosts[h] = busy_hosts.get(h, 0) + 1
        used = sorted(busy_hosts)
        bad = rng.sample(used, min(sp.hw, len(used)))
        hw_kinds = ["fallen_off_bus", "hbm_dbe", "bad_gpu_ima"]
        for i, h in enumerate(bad):
            k = hw_kinds[i % 3] if i < 3 else rng.choice(hw_kinds)
            gpu = rng.randrange(8)
            tmpl = {
                "fallen_off_bus": ["xid79_fallen_off_bus", "cuda_unknown_error", "nccl_watchdog_timeout"],
                "hbm_dbe": ["xid48_dbe", "cuda_uncorrectable_ecc", "xid63_row_remap"],
                "bad_gpu_ima": ["cuda_illegal_memory_access", "xid94_contained"],
            }[k]
            self.causes.append(
                Cause(
                    f"hw-{i}-{k}",
                    "localised_hardware",
                    "hardware",
                    f"{k} on {h} GPU {gpu}",
                    tmpl,
                    {"host": h, "gpu": gpu},
                    hazard=rng.uniform(1 / 3000, 1 / 1500) * sp.hazard_scale,
                    shape="storm:hardware_precursor"
                    if k == "fallen_off_bus"
                    else "gpu:hbm_dbe"
                    if k == "hbm_dbe"
                    else "gpu:one_text_two_causes",
                )
            )
        switches = sorted({self.topology[h] for h in used})
        # a switch whose hosts are used by at least one job with >= 2 hosts under it
        cand = [s for s in switches if any(sum(self.topology[h] == s for h in jb.hosts) >= 2 for jb in self.jobs)]
        for i, s in enumerate(rng.sample(cand, min(sp.switch, len(cand)))):
            t0 = rng.uniform(0.1, 0.6) * 6 * 86400
            self.causes.append(
                Cause(
                    f"net-{i}-switch",
                    "switch",
                    "network",
                    f"leaf switch {s} flapping",
                    ["ib_completion_error", "nccl_watchdog_timeout"],
                    {"switch": s, "t0": t0, "t1": t0 + rng.uniform(8, 20) * 3600},
                    hazard=rng.uniform(1 / 6000, 1 / 3000) * sp.hazard_scale,
                    shape="storm:network",
                )
            )
        self.causes.append(
            Cause(
                "sw-torchsum",
                "regression",
                "software",
                "torch.sum reduction bug since torch 2.3.0",
                ["nan_loss", "cuda_illegal_memory_access", "device_side_assert", "grad_norm_spike"],
                {"versions": {"torch": ["2.3.0", "2.3.1"]}},
                hazard=rng.uniform(1 / 500, 1 / 300) * sp.hazard_scale,
                shape="single_bug:one_dim",
            )
        )
        self.causes.append(
            Cause(
                "sw-leak",
                "leak",
                "software",
                "host memory leak in data pipeline since code v1.4",
                ["host_oom_kill", "dataloader_worker_killed"],
                {"code_version": ["v1.4", "v1.5"], "steps_to_oom": rng.randint(800, 1500)},
                shape="leak",
            )
        )
        for i in range(sp.extra_regressions):
            self.causes.append(
                Cause(
                    f"sw-nccl-{i}",
                    "regression",
                    "software",
                    "NCCL 2.21.5 regression",
                    ["nccl_unhandled_cuda_error", "cublas_execution_failed"],
                    {"versions": {"nccl": ["2.21.5"]}},
                    hazard=rng.uniform(1 / 2500, 1 / 1200) * sp.hazard_scale,
                    shape="regression:one_dim",
                )
            )
        for i in range(sp.data):
            jb = rng.choice([j for j in self.jobs if j.total_steps > 6000])
            step = rng.randrange(2000, jb.total_steps - 1000)
            if step % CHECKPOINT_EVERY == 0:
                step += 7
            self.causes.append(
                Cause(
                    f"data-{i}-shard",
                    "data_step",
                    "data",
                    f"corrupt shard read by {jb.id} at step {step}",
                    ["dataloader_zlib_error", "nan_loss"],
                    {
                        "job": jb.id,
                        "step": step,
                        "repeats": rng.randint(3, 5),
                        "shard": rng.randrange(99999),
                        "rank": rng.randrange(len(jb.hosts) * 8),
                    },
                    shape="data_step:same_rank",
                )
            )

    def apply_targets(self) -> None:
        """Each hazard-driven cause's target (from the hazard and exposure it was given), then the
        first pass's correction."""
        for c in self.causes:
            f = self.rate_fix.get(c.id, 1.0)
            if c.kind == "leak":
                c.scope["steps_to_oom"] = int(min(12000, max(700, c.scope["steps_to_oom"] / f)))
            elif c.hazard:
                c.hazard = min(0.05, c.hazard * f)

    @staticmethod
    def _hazard(target: float, exposure: float) -> float:
        """Failures per step for ``target`` interruptions over ``exposure`` planned steps: each
        failure replays about half a checkpoint interval, which is exposure too."""
        return min(0.05, target / (exposure + target * CHECKPOINT_EVERY / 2)) if exposure > 0 else 0.0

    # -- events
    def job_id(self, jb: Job, attempt: int | None = None) -> str:
        """The job id an attempt (by default the current one) reports, by the fleet's restart convention."""
        attempt = jb.attempt if attempt is None else attempt
        while len(jb.attempt_ids) <= attempt:
            k = len(jb.attempt_ids)
            r = self.shapes.restarts
            if r == "suffix":
                jid = jb.id if k == 0 else f"{jb.id}-r{k + 1}"
            elif r == "requeue":
                self.next_slurm_id += self.id_rng.randint(1, 40)
                jid = str(self.next_slurm_id)
            elif r == "elastic":
                jid = f"{jb.id}-{self.id_rng.randrange(16**8):08x}"
            else:
                jid = jb.id
            jb.attempt_ids.append(jid)
        return jb.attempt_ids[attempt]

    def emit(
        self,
        cause: str,
        tmpl: str,
        jb: Job,
        t: float,
        step: int | None,
        host: str,
        gpu: int | None,
        rank: int | None,
        *,
        host_field: str | None = None,
        attempt: int | None = None,
        **ctx: Any,
    ) -> None:
        if not self.render:  # the first pass only counts interruptions
            return
        code, versions = jb.version_at(step or 0)
        dt = EPOCH + timedelta(seconds=t)
        shp = self.shapes
        c = {
            "dt": dt,
            "host": host,
            "rank": rank if rank is not None else 0,
            "gpu_idx": gpu if gpu is not None else 0,
            "pci": self.pci[(host, gpu if gpu is not None else 0)],
            "step": step or 0,
            "total_steps": jb.total_steps,
            "job": jb.id,
            "versions": versions,
            "uptime": self.uptime0[host] + t,
            "timeout_ms": jb.timeout_ms,
        }
        c.update(ctx)
        T = TEMPLATES[tmpl]
        kernel = tmpl in KERNEL_TEMPLATES
        if host_field is None:
            host_field = self.fqdn[host] if kernel and shp.fqdn_kernel else host
        gpu_field = None
        if gpu is not None:
            if shp.gpu_ids == "pci" or (shp.gpu_ids == "pci_kernel" and kernel):
                gpu_field = self.pci_spelling(self.pci[(host, gpu)])
            else:
                gpu_field = f"GPU{gpu}"
        eid = f"s{self.seed}-{len(self.events):07d}"
        ev = {
            "event_id": eid,
            "job_id": self.job_id(jb, attempt),
            "message": T.render(self.rng, c),
            "time": dt.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "cluster": jb.cluster,
            "host": host_field,
            "gpu": gpu_field,
            "rank": rank,
            "step": step,
            "code_version": code,
            "versions": dict(versions),
            "kind": T.kind,
        }
        if shp.restarts in ("requeue", "elastic"):
            ev["attributes"] = {"run_id": jb.id, "attempt": jb.attempt if attempt is None else attempt}
        self.events.append(ev)
        self.event_cause[eid] = cause
        self.event_template[eid] = tmpl

    def storm(self, cause: str, jb: Job, t: float, step: int, skip_rank: int | None) -> None:
        if not self.render:
            return
        seq = self.rng.randrange(1000, 900000)
        numel = self.rng.choice([466119168, 544997376, 268435456])
        for hi, h in enumerate(jb.hosts):
            for g in range(8):
                r = hi * 8 + g
                if r == skip_rank:
                    continue
                self.emit(
                    cause, "nccl_watchdog_timeout", jb, t + self.rng.uniform(0, 4), step, h, g, r, seq=seq, numel=numel
                )

    def storm_delay(self, jb: Job) -> float:
        """The watchdog fires its stated timeout after the hang (plus its polling slack)."""
        return jb.timeout_ms / 1000 + self.rng.uniform(0, 60)

    def run_jobs(self) -> None:
        rng, sp = self.rng, self.spec
        hw = [c for c in self.causes if c.kind == "localised_hardware"]
        sw_c = [c for c in self.causes if c.kind == "switch"]
        regs = [c for c in self.causes if c.kind == "regression"]
        leak = next(c for c in self.causes if c.kind == "leak")
        hangs = [c for c in self.causes if c.kind == "hang"]
        stores = [c for c in self.causes if c.kind == "storage"]
        data = [c for c in self.causes if c.kind == "data_step"]
        for jb in self.jobs:
            step, t = 0, jb.start
            data_left = {c.id: c.scope["repeats"] for c in data if c.scope["job"] == jb.id}
            hb_next = {h: rng.randrange(sp.heartbeat_every // 2, sp.heartbeat_every) for h in jb.hosts}
            guard = 0
            while step < jb.total_steps and guard < 2000:
                guard += 1
                code, versions = jb.version_at(step)
                # candidates: (fail_step, cause, extra)
                cands: list[tuple[int, Cause, Any]] = []
                for c in hw:
                    if c.scope["host"] in jb.hosts:
                        cands.append((step + _geom(rng, c.hazard), c, None))
                for c in sw_c:
                    under = [h for h in jb.hosts if self.topology[h] == c.scope["switch"]]
                    if not under:
                        continue
                    # the fault is active in a time window; convert to steps of this segment
                    s0 = step + max(0, int((c.scope["t0"] - t) / jb.step_s))
                    s1 = step + int((c.scope["t1"] - t) / jb.step_s)
                    if s1 <= step:
                        continue
                    f = s0 + _geom(rng, c.hazard * min(1.0, len(under) / 2))
                    if f < s1:
                        cands.append((f, c, under))
                for c in regs:
                    if all(versions.get(d) in vals for d, vals in c.scope["versions"].items()):
                        cands.append((step + _geom(rng, c.hazard), c, None))
                if code in leak.scope["code_version"]:
                    cands.append((step + leak.scope["steps_to_oom"] + rng.randrange(-300, 300), leak, None))
                for c in hangs:
                    if code in c.scope["code_version"]:
                        cands.append((step + _geom(rng, c.hazard), c, None))
                for c in stores:
                    if c.scope["cluster"] != jb.cluster:
                        continue
                    for k, ts in enumerate(c.scope["times"]):
                        if ts >= t:
                            cands.append((step + 1 + int((ts - t) / jb.step_s), c, k))
                for c in data:
                    if c.scope["job"] == jb.id and data_left[c.id] > 0 and step < c.scope["step"]:
                        cands.append((c.scope["step"], c, None))
                # phase boundary: a restart onto the next code version
                nxt_phase = min((ph[0] for ph in jb.phases if ph[0] > step), default=None)
                end = jb.total_steps if nxt_phase is None else nxt_phase
                fail = min(cands, key=lambda x: (x[0], x[1].id), default=None)
                stop = fail[0] if fail and fail[0] < end else end
                # heartbeats up to stop
                for h in jb.hosts:
                    while hb_next[h] < stop:
                        s = hb_next[h]
                        hi = jb.hosts.index(h)
                        self.emit(NOISE, "progress", jb, t + (s - step) * jb.step_s, s, h, 0, hi * 8)
                        hb_next[h] += sp.heartbeat_every
                tf = t + (stop - step) * jb.step_s
                if not fail or fail[0] >= end:
                    if nxt_phase is None and rng.random() < 0.5:
                        self.time_limit(jb, tf)
                    step, t = end, tf + (rng.uniform(300, 900) if nxt_phase is not None else 0)
                    if nxt_phase is not None:  # relaunched on the new code version
                        jb.attempt += 1
                        jb.attempt_starts.append(t)
                    continue
                f, c, extra = fail
                self.fail(c, jb, tf, f, extra)
                self.interruptions[c.id] = self.interruptions.get(c.id, 0) + 1
                jb.attempt += 1
                if c.kind == "data_step":
                    data_left[c.id] -= 1
                    if data_left[c.id] == 0:  # the team skips the shard and moves on
                        step, t = f + 1, tf + rng.uniform(600, 3600)
                        jb.attempt_starts.append(t)
                        for h in jb.hosts:
                            hb_next[h] = step + rng.randrange(1, sp.heartbeat_every)
                        continue
                resume = (f // CHECKPOINT_EVERY) * CHECKPOINT_EVERY
                step, t = resume, tf + rng.uniform(300, 1200)
                if c.kind in ("storage", "hang", "switch") or c.id.endswith(("fallen_off_bus", "gsp_timeout")):
                    t += jb.timeout_ms / 1000 + 90  # the storm came first; the restart waits for it
                jb.attempt_starts.append(t)
                for h in jb.hosts:  # the replay logs progress again, at its own offsets
                    hb_next[h] = resume + rng.randrange(1, sp.heartbeat_every)

    def time_limit(self, jb: Job, t: float) -> None:
        """The scheduler ends the job at its time limit: one line about the whole job."""
        nodelist = compress_nodelist(jb.hosts) if self.shapes.nodelist_jobs else jb.hosts[0]
        self.emit(
            NOISE,
            "slurm_time_limit",
            jb,
            t,
            None,
            jb.hosts[0],
            None,
            None,
            host_field=nodelist,
            first_host=jb.hosts[0],
            slurm_id=self.job_id(jb) if self.shapes.restarts == "requeue" else self.rng.randrange(100000, 999999),
        )

    def fail(self, c: Cause, jb: Job, t: float, step: int, extra: Any) -> None:
        rng = self.rng
        nranks = len(jb.hosts) * 8
        if c.kind == "localised_hardware":
            h, g = c.scope["host"], c.scope["gpu"]
            r = jb.hosts.index(h) * 8 + g
            k = c.id.split("-", 2)[2]
            if k == "fallen_off_bus":
                self.emit(c.id, "xid79_fallen_off_bus", jb, t, None, h, g, None)
                self.emit(c.id, "cuda_unknown_error", jb, t + rng.uniform(1, 20), step, h, g, r)
                # every other rank times out after the watchdog's timeout; on the huge job, less often
                # (it is drained sooner)
                if rng.random() < (0.5 if nranks <= 512 else 0.2):
                    self.storm(c.id, jb, t + self.storm_delay(jb), step, r)
            elif k == "gsp_timeout":
                self.emit(c.id, "xid119_gsp_timeout", jb, t, None, h, g, None)
                if rng.random() < (0.6 if nranks <= 512 else 0.2):
                    self.storm(c.id, jb, t + self.storm_delay(jb), step, r)
            elif k == "hbm_dbe":
                self.emit(c.id, "xid48_dbe", jb, t, None, h, g, None)
                self.emit(c.id, "cuda_uncorrectable_ecc", jb, t + rng.uniform(0.5, 5), step, h, g, r)
                if rng.random() < 0.4:
                    self.emit(c.id, "xid63_row_remap", jb, t + rng.uniform(5, 60), None, h, g, None)
            else:
                self.emit(c.id, "cuda_illegal_memory_access", jb, t, step, h, g, r)
                if rng.random() < 0.5:
                    self.emit(c.id, "xid94_contained", jb, t - rng.uniform(0.1, 2), None, h, g, None)
        elif c.kind == "switch":
            under = extra
            for h in rng.sample(under, rng.randint(1, min(3, len(under)))):
                g = rng.randrange(8)
                self.emit(c.id, "ib_completion_error", jb, t + rng.uniform(0, 3), step, h, g, jb.hosts.index(h) * 8 + g)
            self.storm(c.id, jb, t + self.storm_delay(jb), step, None)
        elif c.kind == "storage":
            if c.scope["precursor"][extra]:
                for h in rng.sample(jb.hosts, min(len(jb.hosts), rng.randint(1, 3))):
                    self.emit(
                        c.id,
                        "nfs_not_responding",
                        jb,
                        t + rng.uniform(-30, 5),
                        None,
                        h,
                        None,
                        None,
                        server=c.scope["server"],
                    )
            self.storm(c.id, jb, t + self.storm_delay(jb), step, None)
        elif c.kind == "hang":
            self.storm(c.id, jb, t + self.storm_delay(jb), step, rng.randrange(nranks))
        elif c.kind == "regression":
            tmpl = rng.choice(c.templates)
            if tmpl in ("nan_loss", "grad_norm_spike"):
                r, h, g = 0, jb.hosts[0], 0  # loss lines come from rank 0
            else:
                r = rng.randrange(nranks)
                h, g = jb.hosts[r // 8], r % 8
            self.emit(c.id, tmpl, jb, t, step, h, g, r)
        elif c.kind == "leak":
            h = rng.choice(jb.hosts)
            g = rng.randrange(8)
            self.emit(c.id, "host_oom_kill", jb, t, step, h, None, None)
            for _ in range(rng.randint(1, 3)):
                self.emit(
                    c.id, "dataloader_worker_killed", jb, t + rng.uniform(0, 3), step, h, g, jb.hosts.index(h) * 8 + g
                )
        elif c.kind == "data_step":
            # after a restart another rank may read the bad shard (the sampler's order moved)
            r = rng.randrange(nranks) if self.shapes.data_rank_moves else c.scope["rank"]
            h, g = jb.hosts[r // 8], r % 8
            self.emit(
                c.id,
                "dataloader_zlib_error",
                jb,
                t,
                step,
                h,
                g,
                r,
                shard=c.scope["shard"],
                offset=c.scope["step"] * 4096,
            )
            if rng.random() < 0.6:
                self.emit(c.id, "nan_loss", jb, t - rng.uniform(1, 5), step, jb.hosts[0], 0, 0)

    def noise(self) -> None:
        rng, sp = self.rng, self.spec
        weights = [jb.total_steps * len(jb.hosts) for jb in self.jobs]
        for tmpl in NOISE_TEMPLATES:
            for _ in range(rng.randint(*sp.noise_per_template)):
                jb = rng.choices(self.jobs, weights)[0]
                s = rng.randrange(jb.total_steps)
                hi = rng.randrange(len(jb.hosts))
                g = rng.randrange(8)
                t = jb.start + s * jb.step_s * rng.uniform(1.0, 1.3)
                self.emit(
                    NOISE,
                    tmpl,
                    jb,
                    t,
                    s if tmpl != "xid63_row_remap" else None,
                    jb.hosts[hi],
                    g,
                    hi * 8 + g if tmpl != "xid63_row_remap" else None,
                    attempt=jb.attempt_at(t),
                )


def _geom(rng: random.Random, p: float) -> int:
    if p <= 0:
        return 10**12
    u = rng.random()
    return 1 + int(math.log(1 - u) / math.log(1 - p))


def simulate(seed: int, *, size: str | int = "small", shapes: Shapes | str | None = None) -> Scenario:
    """A scenario for ``seed``. ``shapes``: ``None`` draws them from the seed (:func:`draw_shapes`),
    ``"classic"`` is :data:`CLASSIC`, or a :class:`Shapes` (``dataclasses.replace(draw_shapes(s), ...)``
    pins one)."""
    if shapes is None:
        shp = draw_shapes(seed)
    elif shapes == "classic":
        shp = CLASSIC
    elif isinstance(shapes, Shapes):
        shp = shapes
    else:
        raise ValueError(f"shapes: expected None, 'classic' or a Shapes, got {shapes!r}")
    if shp.mix == "legacy":
        b = _Builder(seed, size, shp, {})
        b.build_fleet()
        b.build_causes_legacy()
    else:
        first = _Builder(seed, size, shp, None)
        first.build_fleet()
        first.build_causes()
        first.run_jobs()
        # Second pass with each cause's rate corrected by what the first realised, so the
        # interruption mix follows the shares (bounded: a cause that never got its chance is not
        # blown up).
        fix = {
            c.id: max(0.5, min(2.0, c.target / max(1, first.interruptions.get(c.id, 0))))
            for c in first.causes
            if c.target
        }
        b = _Builder(seed, size, shp, fix)
        b.build_fleet()
        b.build_causes()
        b.apply_targets()
    b.run_jobs()
    b.noise()
    order = sorted(range(len(b.events)), key=lambda i: (b.events[i]["time"], b.events[i]["event_id"]))
    events = [b.events[i] for i in order]
    present = {c for c in b.event_cause.values()}
    causes = [{**c.as_dict(), "interruptions": b.interruptions.get(c.id, 0)} for c in b.causes if c.id in present]
    causes.append(
        {
            "id": NOISE,
            "kind": "noise",
            "cause_class": "unknown",
            "title": "benign noise and progress",
            "templates": ["progress", "slurm_time_limit", *NOISE_TEMPLATES],
            "scope": {},
            "shape": "noise",
        }
    )
    return Scenario(seed, b.size_name, events, dict(b.topology), causes, b.event_cause, b.event_template, asdict(shp))


def write_scenario(scenario: Scenario, out_path: str | os.PathLike[str]) -> tuple[str, str]:
    """Write ``events.jsonl`` (ingest schema, no truth inside) and ``<stem>.truth.json`` beside it;
    also ``<stem>.topology.json`` (host -> switch)."""
    out = os.fspath(out_path)
    stem = out[: -len(".jsonl")] if out.endswith(".jsonl") else out
    d = os.path.dirname(out)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for ev in scenario.events:
            f.write(json.dumps(ev, sort_keys=True))
            f.write("\n")
    truth_path = stem + ".truth.json"
    with open(truth_path, "w", encoding="utf-8") as f:
        json.dump(scenario.truth, f, sort_keys=True)
    with open(stem + ".topology.json", "w", encoding="utf-8") as f:
        json.dump(scenario.topology, f, sort_keys=True, indent=0)
    return out, truth_path


# --------------------------------------------------------------------------- analysis inputs


def parse_time(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def run_of(ev: dict[str, Any]) -> str | None:
    """The run a reporter named in ``attributes.run_id`` (None when it did not)."""
    v = (ev.get("attributes") or {}).get("run_id")
    return str(v) if v is not None else None


def attempt_of(ev: dict[str, Any]) -> int | None:
    """The restart attempt a reporter named in ``attributes.attempt`` (None when it did not or it is no integer)."""
    v = (ev.get("attributes") or {}).get("attempt")
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def to_records(scenario: Scenario, signature_of: Callable[[dict[str, Any]], tuple[Any, Any]] | None = None):
    """Turn the scenario's events into analysis inputs.

    ``signature_of(event) -> (key, SignatureInfo-like fields)``; by default the stand-in grouping:
    one signature per simulator template (the truth file names it), with the template's category
    and cause class. Returns ``(records, signatures, id_to_event_id)``.
    """
    sig_ids: dict[Any, int] = {}
    sigs: dict[int, SignatureInfo] = {}
    records = []
    id_map: dict[int, str] = {}
    for n, ev in enumerate(scenario.events, start=1):
        if signature_of is None:
            name = scenario.event_template[ev["event_id"]]
            key = name
            T = TEMPLATES[name]
            info = (name.replace("_", " "), T.category, T.cause_class, ())
        else:
            key, info = signature_of(ev)
        sid = sig_ids.get(key)
        if sid is None:
            sid = sig_ids[key] = len(sig_ids) + 1
            sigs[sid] = SignatureInfo(sid, *info)
        records.append(
            EventRecord(
                id=n,
                signature_id=sid,
                job_id=ev["job_id"],
                time=parse_time(ev["time"]),
                host=ev.get("host"),
                gpu=ev.get("gpu"),
                rank=ev.get("rank"),
                step=ev.get("step"),
                cluster=ev.get("cluster"),
                code_version=ev.get("code_version"),
                versions=tuple(sorted((ev.get("versions") or {}).items())),
                run=run_of(ev),
                attempt=attempt_of(ev),
                job_name=launcher_job_name(ev.get("attributes")),
            )
        )
        id_map[n] = ev["event_id"]
    return records, sigs, id_map


def main(argv: list[str] | None = None) -> int:
    """``python -m incidentbot.simulate --seed N --out events.jsonl [--size small|medium|large|N]``"""
    ap = argparse.ArgumentParser(description="Write a simulated GPU-fleet failure scenario (events + truth).")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", default="small")
    ap.add_argument("--out", default="events.jsonl")
    a = ap.parse_args(argv)
    size: str | int = int(a.size) if a.size.isdigit() else a.size
    sc = simulate(a.seed, size=size)
    out, truth = write_scenario(sc, a.out)
    print(f"{len(sc.events)} events -> {out}; truth -> {truth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
