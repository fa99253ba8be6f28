"""GPUs under one name: an index (``3``, ``GPU3``) in the application's lines, a PCI bus id
(``0000:4e:00.0``) in the kernel's; tied together where events on one host show both close in
time (``names.link_gpu_ids``), else through the fleet's usual pairing (one server model numbers
its GPUs the same way on every host). Cached on the index: computed once per analysis."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict

from .index import Index
from .names import link_gpu_ids, normalise_gpu

__all__ = ["device_of", "gpus_per_host"]


def device_of(ix: Index, i: int) -> str | None:
    """The GPU event ``i`` names, as an index (a PCI bus id read through the host's tie; an
    untied bus id as itself), or None."""
    ties = ix.cache.get("gpu_ties")
    if ties is None:
        ties = ix.cache["gpu_ties"] = _gpu_ties(ix)
    e = ix.ev[i]
    g = _norm(ix, e.gpu)
    if g is None:
        return None
    if g.startswith("pci:"):
        return ties.get((e.host, g), g)
    return g if g.isdigit() else None


def gpus_per_host(ix: Index) -> int:
    """GPUs per host: the highest GPU index seen anywhere, plus one (at least 2, at most 16).
    Hosts of one fleet are alike, and a host's few events name only a few of its GPUs."""
    n = ix.cache.get("gpus_per_host")
    if n is None:
        top = 1
        for i, e in enumerate(ix.ev):
            if e.gpu is not None:
                d = device_of(ix, i)
                if d is not None and d.isdigit():
                    top = max(top, int(d))
        n = ix.cache["gpus_per_host"] = min(16, top + 1)
    return n


def _norm(ix: Index, gpu: str | None) -> str | None:
    memo = ix.cache.setdefault("gpu_norm", {})
    g = memo.get(gpu, memo)
    if g is memo:
        g = memo[gpu] = normalise_gpu(gpu)
    return g


def _gpu_ties(ix: Index) -> dict[tuple[str, str], str]:
    """(host, PCI bus id) -> GPU index, from the events that show both: an event with a bus id and
    one with an index on the same host within a few seconds, the one GPU each of them names
    (``names.link_gpu_ids`` keeps the most frequent pairing and drops ties). A bus id seen on no
    such host is read through the fleet's most frequent pairing (one server model numbers its
    GPUs the same way on every host)."""
    S = ix.S
    by_host: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for e in ix.ev:
        if e.host is None or e.gpu is None:
            continue
        g = _norm(ix, e.gpu)
        if g is not None and (g.isdigit() or g.startswith("pci:")):
            by_host[e.host].append((e.time, g))
    obs: list[tuple[str, str, str]] = []
    for h, lst in by_host.items():
        pcis = [(t, g) for t, g in lst if g.startswith("pci:")]
        if not pcis:
            continue
        idx = sorted((t, g) for t, g in lst if g.isdigit())
        ts = [t for t, _ in idx]
        for t, p in pcis:
            lo = bisect.bisect_left(ts, t - S.incident_tie_s)
            hi = bisect.bisect_right(ts, t + S.incident_tie_s)
            near = {g for _t, g in idx[lo:hi]}
            if len(near) == 1:
                obs.append((h, next(iter(near)), p))
    ties = link_gpu_ids(obs)
    fleet: dict[str, Counter] = defaultdict(Counter)
    for (_h, p), i in ties.items():
        fleet[p][i] += 1
    for h, lst in by_host.items():
        for _t, g in lst:
            if g.startswith("pci:") and (h, g) not in ties and fleet.get(g):
                (top, n), *rest = fleet[g].most_common(2) + [(None, -1)]
                if rest[0][1] < n:
                    ties[(h, g)] = top
    return ties
