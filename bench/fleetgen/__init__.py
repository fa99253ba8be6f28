"""fleetgen: an independent scenario generator for the diagnosis benchmark.

Written from issue 15, the published failure taxonomy (``../shared/data/gpu-failures/taxonomy.md``),
the real failure texts (``exemplars.jsonl``, used as message templates with their variable parts
drawn anew), the Xid catalog and the Event contract, **without reading the diagnosis engine, its
simulator or its bench**. Its purpose is data the engine's authors did not shape.

    from bench.fleetgen import generate          # or: sys.path.insert(0, "bench"); import fleetgen
    sc = generate(7, family="slurm", size="medium")
    sc.events      # contract Event dicts for POST /v1/events, sorted by time
    sc.truth       # event_cause, event_template, causes, single_bug, progress_event_ids, runs, ...
    sc.topology    # host (every spelling) -> leaf switch; the bench mostly runs without it

    python -m bench.fleetgen --seed 7 --family slurm --size medium --out /tmp/sc7

Every family shares: a fleet of clusters, leaf switches and 8-GPU hosts; long runs made of attempts
(each restart an attempt, resumed from the last checkpoint); a background of interruptions drawn
from Llama 3's 419 unexpected interruptions (GPU, HBM, SRAM, GSP, NVLink, thermal, SDC, NIC,
cables, host parts, unplanned maintenance, unexplained watchdog timeouts), some on "lemon" parts
that fail again; Xid lines no failure follows; a data fault that recurs at the same step after
every restart, read by whichever rank gets the sample; progress reports (``kind=progress``, clean
exposure of versions) and benign noise known by meaning (NCCL INFO, slow checkpoints, mlx5
ACCESS_REG, IMEX false positives, fp16 loss-scale calibration). A hardware precursor is followed
by the NCCL watchdog storm of every other rank ``Timeout(ms)`` later (600000 or 1800000 per seed,
written in the text). Each family also has a rare many-symptom bug (the torch.sum story): it fires
every few hundred to a thousand steps on any rank of any host, with 3-5 unlike symptoms, under one
version condition.

Families (``family=None`` picks one from the seed):

``ipfabric``
    Kubernetes; hosts named by IP, one /24 per leaf switch; torchelastic restarts (run id and
    restart count in attributes, a new job id after max_restarts) or an ``attempt`` attribute;
    kernel lines in Talos format. Two clusters with different drivers, and the flapping switch
    sits in the cluster with the odd driver (a version that stands for a cluster). The single bug
    is active only under one torch x CUDA pair and includes the illegal-memory-access text that a
    bad GPU on one host (never drained) also writes. Unexplained pod evictions.
``slurm``
    SLURM; ``node001`` numbering; a requeue gets a new numeric job id (``job_name`` attribute
    links them); job-level lines carry the node list (``node[097-116,120]``) in ``host``; GPU as
    ``GPU3``; time-limit cancellations; shared storage stalls that storm every job of a cluster at
    once; an NCCL upgrade mid-scenario on one cluster with a regression after it; a host-memory
    leak in one code version; bare ``WTERMSIG 9`` kills in the controller log nobody explains; the
    single bug under one Transformer Engine release (one run from the start, one moving onto it).
``racks``
    SLURM with rack-token names (``gpu-r12-n07``) and FQDNs in kernel (journald) lines; restarts
    as ``-r2`` suffixes or an ``attempt`` attribute; a top-of-rack switch flapping; a software hang
    with no precursor; an illegal-memory-access bug under one flash-attn release beside a bad GPU
    writing the same text; a slow leak; the single bug beginning at a torch upgrade mid-run.

Truth: ``event_cause`` maps every non-progress event to a cause id or "noise";
``event_template`` names the symptom template; ``causes`` lists id, cause_class (hardware, network,
software, data, infrastructure, unknown), kind, symptoms and scope; ``single_bug`` is the
many-symptom bug's id; ``progress_event_ids`` lists the progress reports (not scored); ``runs``
maps each run to its job ids (the lineage the engine must find); ``host_aliases`` maps FQDNs to short names; ``interruptions``
counts attempt-ending failures per cause class (time-limit ends are planned, not counted);
``interruptions_by_kind`` the same per cause kind. A hardware cause is one failing part (a GPU,
a NIC, a host), so one signature (an ECC error) is spread over many causes to be told apart by
scope; the launcher's ChildFailedError summary and the watchdog storm texts are shared by every
cause that ends jobs, as in real fleets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .families import FAMILIES, SIZES
from .sim import Sim

__all__ = ["generate", "pick_family", "Scenario", "FAMILIES", "SIZES"]


@dataclass
class Scenario:
    events: list[dict]
    truth: dict
    topology: dict[str, str]
    meta: dict = field(default_factory=dict)


def pick_family(seed: int) -> str:
    """The family ``generate(seed)`` uses when none is given."""
    return sorted(FAMILIES)[random.Random(f"fleetgen-family:{seed}").randrange(len(FAMILIES))]


def generate(seed: int, *, family: str | None = None, size: str = "medium") -> Scenario:
    """A scenario, the same for the same (seed, family, size)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, not {size!r}")
    if family is None:
        family = pick_family(seed)
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, not {family!r}")
    P = SIZES[size]
    r = random.Random(f"fleetgen:{seed}:{family}:{size}")
    built = FAMILIES[family](r, P)
    sim: Sim = built.sim
    sim.spec["own_handlers"] = _own_handlers()
    sim.spec["handlers"] = _handlers()
    sim.run_timeline()
    for run in sim.runs:
        for att in run.attempts:
            sim.progress_and_checkpoints(att)
    n = len(sim.out.events)
    target = P["target"]
    sim.background_noise(max(int(target * 0.12), target - n))
    events = sorted(sim.out.events, key=lambda e: (e["time"], e["event_id"]))
    causes = [c for c in sim.causes.values() if c["symptoms"]]
    live = {c["id"] for c in causes}
    single = built.single_bug if built.single_bug in live else None
    runs_truth = {run.name: [] for run in sim.runs}
    for run in sim.runs:
        for att in run.attempts:
            if att.job_id not in runs_truth[run.name]:
                runs_truth[run.name].append(att.job_id)
    truth = {
        "event_cause": sim.out.cause_of,
        "event_template": sim.out.template_of,
        "causes": causes,
        "single_bug": single,
        "progress_event_ids": sim.out.progress_ids,
        "runs": runs_truth,
        "host_aliases": sim.fleet.aliases(),
        "interruptions": dict(sorted(sim.interruptions.items())),
        "interruptions_by_kind": dict(sorted(sim.interruptions_by_kind.items())),
    }
    meta = dict(built.meta, seed=seed, size=size, events=len(events), hosts=len(sim.fleet.hosts),
                attempts=sum(len(run.attempts) for run in sim.runs), runs=len(sim.runs),
                written_without_reading_the_engine=True)
    return Scenario(events=events, truth=truth, topology=sim.fleet.topology(), meta=meta)


def _handlers():
    from .causes import HANDLERS
    return HANDLERS


def _own_handlers():
    from .causes import OWN_HANDLERS
    return OWN_HANDLERS
