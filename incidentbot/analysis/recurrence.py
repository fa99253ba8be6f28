"""Rule 2, recurrence at a step: a run failing at the same step after restarts -> bad data.

Counted across the attempts of a run (``lineage.py``: a restart often has a new job id), by any
rank (after a restart the sampler may hand the bad shard to another rank). Each attempt's failure
there is one occurrence; ``data_min_repeats`` of them, each followed by a restart (the run's next
steps do not pass the step), make the claim. A signature "recurring" at many steps of a run is
periodic logging replayed after restarts, not a bad record."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict

from .coverage import is_benign_text
from .index import Component, Index, near


# ---- 2. recurrence at a step
def find_bad_steps(ix: Index) -> None:
    S = ix.S
    # one flat pass: (run, step, sig) -> occurrences
    flat: dict[tuple, set[int] | int] = {}
    ev, occ, storm, run_of = ix.ev, ix.occ, ix.in_storm, ix.run_of
    for s in sorted(ix.by_sig):
        if s in ix.routine or is_benign_text(ix, s):
            # a progress report, or an INFO line every attempt logs at the step it resumes from
            # (NCCL's init), is no bad record
            continue
        for i in ix.by_sig[s]:
            e = ev[i]
            if e.step is None or i in storm:
                continue
            k3 = (run_of[e.job_id], e.step, s)
            o = occ[i]
            cur = flat.get(k3)
            if cur is None:
                flat[k3] = o  # most keys are seen once: keep an int, not a set
            elif isinstance(cur, int):
                if cur == o:
                    continue
                flat[k3] = {cur, o}
            elif o in cur:
                continue
            else:
                cur.add(o)
    distinct_keys_per_sig = Counter(k3[2] for k3 in flat)
    keys: dict[tuple[str, int], dict[int, set[int]]] = defaultdict(dict)
    primary: dict[int, list[tuple[str, int, int]]] = defaultdict(list)
    per_job_sig: dict[tuple[str, int], list[tuple[str, int, int]]] = defaultdict(list)
    repeated = {k: v for k, v in flat.items() if not isinstance(v, int)}
    # how many attempts must fail there: fewer when the failures came on different hosts (the bad
    # record moved with the sampler; a bad GPU failing again right after the restart stays put)
    need: dict[tuple, int] = {}
    for k3 in sorted(repeated):
        n_occ = len(repeated[k3])
        if n_occ >= S.data_min_repeats:
            need[k3] = S.data_min_repeats
        elif n_occ >= S.data_min_repeats_moved and _moved(ix, k3):
            need[k3] = S.data_min_repeats_moved
        else:
            continue
        per_job_sig[(k3[0], k3[2])].append(k3)
    if per_job_sig:
        occ_in_job: Counter = Counter()
        for k3, v in flat.items():
            if (k3[0], k3[2]) in per_job_sig:
                occ_in_job[(k3[0], k3[2])] += 1 if isinstance(v, int) else len(v)
        for js, k3s in sorted(per_job_sig.items()):
            share = sum(len(repeated[k3]) for k3 in k3s) / occ_in_job[js]
            # a bad record: few such steps in the job, or most of the signature's failures there
            if len(k3s) <= 2 or share >= 0.5:
                for k3 in k3s:
                    primary[k3[2]].append((k3[0], k3[1], need[k3]))
    cand_keys = {k[:2] for ks in primary.values() for k in ks}
    for k3, v in flat.items():
        if k3[:2] in cand_keys:
            keys[k3[:2]][k3[2]] = {v} if isinstance(v, int) else v
    bad_keys: dict[tuple[str, int], int] = {}
    primary_of: dict[tuple[str, int], set[int]] = defaultdict(set)
    for s, ks in sorted(primary.items()):
        # a signature that "recurs" at many steps is periodic logging, not a bad record
        if len(ks) > max(3, 0.05 * distinct_keys_per_sig[s]):
            continue
        for j, step, n_need in ks:
            k = (j, step)
            if stops(ix, s, k) >= n_need - 1:
                bad_keys.setdefault(k, len(keys[k][s]))
                primary_of[k].add(s)
    if not bad_keys:
        return
    for k in sorted(bad_keys):
        j, step = k
        prim_t = sorted(
            ix.ev[i].time
            for s in primary_of[k]
            for i in ix.by_sig[s]
            if run_of[ix.ev[i].job_id] == j and ix.ev[i].step == step
        )
        for s in sorted(keys[k]):
            occs = keys[k][s]
            idx = [
                i
                for i in ix.by_sig[s]
                if run_of[ix.ev[i].job_id] == j and ix.ev[i].step == step and i not in ix.taken and i not in ix.in_storm
            ]
            if len(occs) < 2 and s not in primary_of[k]:
                # a lone event at the bad step joins only when it came with the failure there
                idx = [i for i in idx if near(prim_t, ix.ev[i].time, 120.0)]
            if not idx:
                continue
            n_occ = len(occs)
            # chance that one job's failures hit the same step this often: tiny for >= 3
            p = min(1.0, 10.0 ** (-(n_occ * 1.5)))
            jobs = sorted({ix.ev[i].job_id for i in idx})
            ranks = sorted({r for i in idx if (r := ix.ev[i].rank) is not None})
            who = f" (job ids {', '.join(jobs[:5])}{'…' if len(jobs) > 5 else ''})" if len(jobs) > 1 else ""
            by = f", read by rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks[:5]))}" if ranks else ""
            evidence = [
                f"{ix.sig_title(s)}: run {j} stopped at step {step:,} in {n_occ} separate attempts{who}{by} "
                f"(restarts from checkpoint reached the same step and failed again)"
            ]
            ix.add(
                Component(
                    s,
                    "data_step",
                    # one hypothesis per run: its bad steps are one dataset to clean (a shard spans
                    # steps; a restart reads it again), one ticket, one vote
                    ("data", j),
                    idx,
                    p,
                    evidence,
                    # the run by name: its attempts' job ids are evidence, not what people call it
                    {"runs": [j], "jobs": jobs, "steps": [str(step)]},
                    cause_class="data",
                )
            )


def _moved(ix: Index, k3: tuple) -> bool:
    """Whether text ``s`` failed at (run, step) on one host each time, a different host across the
    attempts, and is no hardware or network line (which says where it broke, not what was read).
    One rank reads a bad record; a line from many hosts at once is a collective's (NCCL failing to
    connect at the step the attempt resumed from)."""
    run, step, s = k3
    if ix.sig_class(s) in ("hardware", "network"):
        return False
    hosts_of: dict[int, set] = defaultdict(set)
    for i in ix.by_sig[s]:
        e = ix.ev[i]
        if e.step == step and ix.run_of[e.job_id] == run:
            hosts_of[ix.occ[i]].add(e.host)
    if any(len(hs) != 1 or None in hs for hs in hosts_of.values()):
        return False
    return len(set().union(*hosts_of.values())) >= 2


def stops(ix: Index, s: int, k: tuple[str, int]) -> int:
    """How many occurrences of s at (job, step) were followed by a restart (the job's next step
    seen a minute later is not beyond it), as a job failing at that step would be."""
    j, step = k
    tk = ix.run_times[j]
    idx = ix.by_run[j]
    run_of = ix.run_of
    n = 0
    seen_occ = set()
    for i in ix.by_sig[s]:
        e = ix.ev[i]
        if run_of[e.job_id] != j or e.step != step or ix.occ[i] in seen_occ:
            continue
        seen_occ.add(ix.occ[i])
        lo = bisect.bisect_right(tk, e.time + 60.0)
        hi = bisect.bisect_right(tk, e.time + 6 * 3600.0)
        later: list[int] = []
        for q in range(lo, min(hi, lo + 500)):
            st = ix.ev[idx[q]].step
            if st is not None:
                later.append(st)
                # back at the step: the job restarted from a checkpoint before it (what comes after
                # that is the next attempt's)
                if len(later) == 3 or st == step:
                    break
        # the job's next steps do not go past this one (it restarted from a checkpoint, or stopped);
        # a stray line beyond it (a late log, a wrong clock) is outvoted
        if not later or sum(1 for x in later if x > step) <= 0.5 * len(later):
            n += 1
    return n
