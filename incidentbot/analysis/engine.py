"""The hypothesis engine: from events with signature ids to proposed causes.

Pure: no I/O, no clock. ``index.Index`` is built once: records sorted by time, hosts under one
spelling (FQDN = short name; a SLURM node list of several hosts is no one host's), each record
weighed by ``count`` (the events an occurrence aggregate stands for), each job's run
(``lineage.py``), the exposure (steps per job/run, host and version set, from the events and
progress reports), and, without a topology file, groups from the host names (``names.py``). The
unit of counting is an *occurrence*: events of one signature in one job less than 30 s apart.
Every threshold is in ``settings.Settings``. The rules, in order, each taking what it explains:

1. ``storms.py``: bursts of one signature from many hosts/ranks within seconds are set aside.
2. ``recurrence.py``: a run failing at the same step in >= 3 attempts, or in 2 on different
   hosts, one host each (new job ids allowed, any rank; runs from id patterns, the reporter's
   run, or the launcher's job name) -> bad data.
3. ``localisation.py``: occurrences concentrated on a host beyond what its exposure in the
   affected runs allows (binomial tail, Bonferroni over hosts); several hosts of one switch (or
   name group) -> the switch. Scheduler lines about a whole job are never localised.
4. ``onset.py``: one text present on some versions and absent on others that ran long enough;
   not claimed when the version stands for one cluster; a text fitting two onsets is split.
   ``pooled.py``: texts each too rare for an onset, sharing one (single dimension, or a pair
   such as torch x cuda when the single claim is too broad), pooled into one bug.
5. ``merging.py``: components with one evidence profile -> one hypothesis (one bug, many
   symptoms); people's together/apart decisions obeyed.
6. ``cooccurrence.py``: leftover occurrences reliably next to a hypothesis' events join it; a
   regression's rarer texts join it by version scope (a binomial test, or, too few for one, when
   the text's rate elsewhere explains under half of its lines inside; one process's lines only).
7. ``precedence.py``: a storm goes to the nearest reliable precursor in its job within the
   watchdog's own timeout (``Timeout(ms)=`` in the text, else ``watchdog_timeout_s``); another
   watchdog's line is no precursor. The launcher's line after a failure goes with that failure.
8. ``coverage.py``: what is left becomes "one failure mode, cause not yet known" (or "collective
   hang, cause not yet known" per code version or run, or a shared component when storms hit a
   cluster's jobs at once); benign noise (benign words AND spread) stays out.

The confidence of a hypothesis is a monotone map of its strongest test (see ``Proposal``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .cooccurrence import cooccur, join_followers, join_scope, split_by_rate
from .coverage import cover, is_job_level_text, routine_signatures
from .hypothesis import Hyp
from .incidents import find_anchored, find_incidents
from .index import Index
from .localisation import localise, separate_gpus
from .merging import human_only, merge
from .model import Constraints, EventRecord, Proposal, SignatureInfo, Topology
from .onset import onset, onset_split
from .pooled import pooled_onset
from .precedence import attribute_storms
from .recurrence import find_bad_steps
from .settings import Settings
from .storms import find_bursts, shared_storms
from .versions import version_key

__all__ = ["analyze", "Settings", "version_key"]

DEFAULT = Settings()


def _run(ix: Index) -> list[Proposal]:
    # routine benign noise (progress reports, INFO chatter, loss scaling) spread over the fleet
    # takes part in no rule: set aside as if explained, and coverage leaves it out
    ix.routine = routine_signatures(ix)
    for s in ix.routine:
        ix.taken.update(ix.by_sig[s])
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
    separate_gpus(ix)
    # incidents, pass 1: one job's failure begun by one host's own hardware or network line (incidents.py)
    find_anchored(ix)
    left = {s: kept for s, idx in left.items() if (kept := [i for i in idx if i not in ix.taken])}
    # a symptom shared by two regressions (one text, two onsets): split it by the known onsets
    known = sorted(
        {(c.key[1], c.key[2]): c.p for c in ix.components if c.kind == "regression"}.items(),
        key=lambda kv: (kv[1], kv[0]),
    )
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
        known = sorted(
            {(c.key[1], c.key[2]): c.p for c in ix.components if c.kind == "regression"}.items(),
            key=lambda kv: (kv[1], kv[0]),
        )
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
    shared_storms(ix, hyps, owner)  # before incidents: a file system's stall is no host's incident
    incidents = find_incidents(ix, hyps, owner)
    join_scope(ix, hyps, owner)
    split_by_rate(ix, hyps, owner)
    attribute_storms(ix, hyps, owner, incidents)
    followers = join_followers(ix, hyps, owner)
    human_only(ix, hyps, owner)
    out = [h.proposal() for h in hyps if h.events]
    out += cover(ix, owner, {**followers, **incidents.follow})
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
    # The cyclic collector stays on: gc.disable() is process-wide, and the analysis runs on a
    # worker thread beside ingest and Slack handlers (and two overlapping runs could leave it off
    # for good). Measured without it on 78k- and 111k-record scenarios: within run-to-run noise.
    return _run(Index(events, signatures, topology, constraints, settings, exposure))
