"""The hypothesis engine: from events with signature ids to proposed causes.

Pure: no I/O, no clock. One pass builds the exposure (which job ran which versions on which
hosts for how many steps, from the events themselves: the steps each (job, host) and each
(job, version set) covered); then each signature's events go through the evidence rules in a
fixed order, each rule taking the events it explains. The unit of counting is an *occurrence*:
events of one signature in one job less than 30 s apart count once.

Each rule is a module over the shared index (``index.py``); every threshold is in
``settings.Settings``.

1. **storms** (``storms.py``): bursts of one signature from many hosts/ranks within seconds are set aside;
   rule 7 explains them by what preceded them.
2. **recurrence at a step**: the same (job, step) failing in >= 3 separate occurrences, read by
   the same rank each time, with the job restarting behind it each time -> bad data. Periodic
   logging (progress lines replayed after restarts) is told apart: many such steps in one job.
   Other signatures' events at that (job, step) join it.
3. **localisation**: occurrences concentrated on a host beyond what exposure allows: each job's
   occurrences are spread over that job's hosts by the steps they ran (so a host that ran more
   steps, or sat in more jobs, is not suspect); binomial upper tail, Bonferroni over the hosts.
   Several pinned hosts under one switch (topology given) -> the switch, unless the text is a
   GPU's own (Xid/ECC) or each host's events sit on one GPU; a network symptom pinned to a host
   with more of it under the same switch -> the switch; a spread over one switch's hosts with no
   single host enough -> the switch. Rank-0-only logs (loss lines) are not localised. Second
   pass: other signatures are tested on the hosts already pinned (few tests, looser threshold).
4. **onset**: occurrences present on some code/framework versions ("since", "until", "only"
   one value, per version dimension) and absent on the others, where the others ran long
   enough: P(<= observed | the rate seen elsewhere x their steps), Bonferroni over all cut
   points; too little exposure on the clean side -> no claim. A signature fitting no single
   onset but the union of two found for other signatures is split between them.
5. Components with one evidence profile (same host, same switch, same onset, same bad step)
   merge into one hypothesis: "one bug, four symptoms". Human constraints are obeyed here
   (together: forced merge; apart: no merge puts two of the group together).
6. **co-occurrence**: leftover occurrences of a signature that reliably (>= 70%) sit next to a
   hypothesis' events (same job, within a minute) join it.
7. **precedence**: a precursor is a signature seen before storms of another (twice, or before
   half of them, or, when its text is a hardware/network error, nearly always next to storms);
   each storm burst goes to the nearest precursor event before it in the same job (within
   15 min: the NCCL watchdog fires ~10 min after a hang) and joins that event's hypothesis
   (or a new "storm" hypothesis around the precursor, per switch).

Whatever no rule explains (rare, scattered, no profile) gets no hypothesis. The confidence of a
hypothesis is a monotone map of its strongest test (see ``Proposal``).
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence

from .cooccurrence import cooccur
from .coverage import cover, is_job_level_text
from .hypothesis import Hyp
from .index import Index
from .localisation import localise
from .merging import human_only, merge
from .model import Constraints, EventRecord, Proposal, SignatureInfo, Topology
from .onset import onset, onset_split
from .pooled import pooled_onset
from .precedence import attribute_storms
from .recurrence import find_bad_steps
from .settings import Settings
from .storms import find_bursts
from .versions import version_key

__all__ = ["analyze", "Settings", "version_key"]

DEFAULT = Settings()


def _run(ix: Index) -> list[Proposal]:
    find_bursts(ix)
    find_bad_steps(ix)
    rest: dict[int, list[int]] = {}
    for s in sorted(ix.by_sig):
        idx = [i for i in ix.by_sig[s] if i not in ix.taken and i not in ix.in_storm]
        if idx and is_job_level_text(ix, s):
            continue  # a scheduler line about the whole job is no host's fault (coverage decides)
        if idx:
            rest[s] = localise(ix, s, idx)
    suspects = sorted({c.key[1] for c in ix.components if c.key[0] == "host"})
    left: dict[int, list[int]] = {}
    for s, idx in rest.items():
        if idx and suspects:
            idx = localise(ix, s, idx, suspects)
        if idx:
            n_before = len(ix.components)
            keep = onset(ix, s, idx)
            if len(ix.components) == n_before:
                left[s] = keep
    # a symptom shared by two regressions (one text, two onsets): split it by the known onsets
    known = sorted({(c.key[1], c.key[2]): c.p for c in ix.components if c.kind == "regression"}.items(),
                   key=lambda kv: (kv[1], kv[0]))
    labels = {(c.key[1], c.key[2]): c.label for c in ix.components if c.kind == "regression"}
    if len(known) >= 2:
        for s, idx in left.items():
            onset_split(ix, s, idx, [k for k, _ in known], labels)
    # several texts, each too rare for an onset of its own, sharing one: one bug, many symptoms
    # (what other rules left of every signature: a text may be half a bad GPU's, half the bug's)
    pool_in = {}
    for s in sorted(ix.by_sig):
        idx = [i for i in ix.by_sig[s] if i not in ix.taken and i not in ix.in_storm]
        if idx:
            pool_in[s] = idx
    pooled = pooled_onset(ix, pool_in)
    if pooled:
        # a text shared by a pooled bug and another onset: split it by the onsets now known
        known = sorted({(c.key[1], c.key[2]): c.p for c in ix.components if c.kind == "regression"}.items(),
                       key=lambda kv: (kv[1], kv[0]))
        labels = {(c.key[1], c.key[2]): c.label for c in ix.components if c.kind == "regression"}
        if len(known) >= 2:
            for s in sorted(pool_in):
                if s in pooled:
                    continue
                idx = [i for i in pool_in[s] if i not in ix.taken]
                if idx:
                    onset_split(ix, s, idx, [k for k, _ in known], labels)
    groups = merge(ix)
    hyps = [Hyp(ix, [ix.components[ci] for ci in g]) for g in groups]
    owner: dict[int, int] = {}
    for hi, h in enumerate(hyps):
        for i in h.events:
            owner[i] = hi
    cooccur(ix, hyps, owner)
    attribute_storms(ix, hyps, owner)
    human_only(ix, hyps, owner)
    out = [h.proposal() for h in hyps if h.events]
    out += cover(ix, owner)
    out.sort(key=lambda p: (-len(p.event_ids), p.key))
    return out


def analyze(
    events: Sequence[EventRecord],
    signatures: Mapping[int, SignatureInfo],
    *,
    topology: Topology | None = None,
    constraints: Constraints = Constraints(),
    settings: Settings = DEFAULT,
    exposure: Sequence[EventRecord] = (),
) -> list[Proposal]:
    """Propose hypotheses (causes) for the events. Pure and deterministic.

    ``exposure``: records of jobs running without failing (from progress reports); they count
    only as exposure (which hosts, versions and steps ran), never as events of a signature."""
    if not events:
        return []
    gc_was_on = gc.isenabled()
    gc.disable()  # many small tuples and no cycles: the cyclic collector only costs time here
    try:
        return _run(Index(events, signatures, topology, constraints, settings, exposure))
    finally:
        if gc_was_on:
            gc.enable()
