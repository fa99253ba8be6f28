"""Rule 6, co-occurrence: leftover occurrences that reliably sit next to a hypothesis' events join it."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict

from .coverage import is_benign_text
from .hypothesis import Hyp
from .index import Index


# ---- 6. co-occurrence
def cooccur(ix: Index, hyps: list[Hyp], owner: dict[int, int]) -> None:
    S = ix.S
    if not hyps:
        return
    times: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for i, hi in owner.items():
        times[ix.ev[i].job_id].append((ix.ev[i].time, hi))
    for j in times:
        times[j].sort()
    tkeys = {j: [t for t, _ in v] for j, v in times.items()}
    for s in sorted(ix.by_sig):
        if is_benign_text(ix, s):
            continue  # benign lines sit next to everything; coverage decides whether they matter
        left = [i for i in ix.by_sig[s] if i not in owner and i not in ix.in_storm]
        if not left:
            continue
        occs: dict[int, list[int]] = defaultdict(list)
        for i in left:
            occs[ix.occ[i]].append(i)
        if len(occs) < 3:
            continue
        votes: Counter = Counter()
        near_of: dict[int, set[int]] = {}
        for o, ii in occs.items():
            e = ix.ev[ii[0]]
            lst = times.get(e.job_id)
            if not lst:
                continue
            tk = tkeys[e.job_id]
            lo = bisect.bisect_left(tk, e.time - S.cooccur_window_s)
            hi_ = bisect.bisect_right(tk, e.time + S.cooccur_window_s)
            near = {lst[k][1] for k in range(lo, min(hi_, lo + 50))}
            near_of[o] = near
            for h in near:
                votes[h] += 1
        if not votes:
            continue
        h, v = min(votes.items(), key=lambda kv: (-kv[1], kv[0]))
        if v < S.cooccur_frac * len(occs) or v < 3:
            continue
        if not ix.apart_allows(hyps[h].sigs | {s}):
            continue
        # only the occurrences that sit next to it; the rest stay unexplained
        ids = [i for o, ii in occs.items() if h in near_of.get(o, ()) for i in ii]
        hyps[h].add_events(
            s,
            ids,
            f"{ix.sig_title(s)}: {v} of {len(occs)} occurrences within "
            f"{int(S.cooccur_window_s)} s of this cause's other events in the same job",
        )
        for i in ids:
            owner[i] = h
