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
    devs = ix.cache.get("gpu_devices")
    if devs is None:
        devs = ix.cache["gpu_devices"] = _devices(ix)
    return devs[i]


def dominant_device(ix: Index, idx) -> str | None:
    """The GPU (as ``gpus.device_of`` names it) that at least 80% of these events name, if two or more do."""
    g = Counter(d for i in idx if (d := device_of(ix, i)) is not None)
    if not g:
        return None
    d, n = g.most_common(1)[0]
    return d if n >= 2 and n >= 0.8 * sum(g.values()) else None


def gpus_per_host(ix: Index) -> int:
    """GPUs per host: the highest GPU index seen anywhere, plus one (at least 2, at most 16).
    Hosts of one fleet are alike, and a host's few events name only a few of its GPUs."""
    n = ix.cache.get("gpus_per_host")
    if n is None:
        if "gpu_devices" not in ix.cache:
            device_of(ix, 0)
        top = max((int(d) for d in set(ix.cache["gpu_devices"]) if d is not None and d.isdigit()), default=1)
        n = ix.cache["gpus_per_host"] = max(2, min(16, top + 1))
    return n


def _devices(ix: Index) -> list[str | None]:
    """One pass: every event's GPU (index, PCI bus id through its tie, or None). Memoised per
    (host, GPU field): a fleet has far fewer of those than events."""
    norm: dict[str | None, str | None] = {}
    for e in ix.ev:
        g = e.gpu
        if g not in norm:
            n = normalise_gpu(g)
            norm[g] = n if n is not None and (n.isdigit() or n.startswith("pci:")) else None
    ties = _gpu_ties(ix, norm)
    memo: dict[tuple[str | None, str | None], str | None] = {}
    out: list[str | None] = []
    for e in ix.ev:
        k = (e.host, e.gpu)
        d = memo.get(k, "?")
        if d == "?":
            g = norm[e.gpu]
            pci = g is not None and g.startswith("pci:") and e.host is not None
            d = memo[k] = ties.get((e.host or "", g or ""), g) if pci else g
        out.append(d)
    return out


def _gpu_ties(ix: Index, norm: dict[str | None, str | None]) -> dict[tuple[str, str], str]:
    """(host, PCI bus id) -> GPU index, from the events that show both: an event with a bus id and
    one with an index on the same host within a few seconds, the one GPU each of them names
    (``names.link_gpu_ids`` keeps the most frequent pairing and drops ties). A bus id seen on no
    such host is read through the fleet's most frequent pairing (one server model numbers its
    GPUs the same way on every host)."""
    S = ix.S
    pci_raw = {g for g, n in norm.items() if n is not None and n.startswith("pci:")}
    if not pci_raw or not any(n is not None and n.isdigit() for n in norm.values()):
        return {}  # bus ids only, or indices only: nothing to tie
    pci_hosts = {e.host for e in ix.ev if e.gpu in pci_raw and e.host is not None}
    # per host, in time order (the index's events are sorted): the bus-id events, and the index
    # events' times and GPUs as two lists
    pcis: dict[str, list[tuple[float, str]]] = defaultdict(list)
    idx_t: dict[str, list[float]] = defaultdict(list)
    idx_g: dict[str, list[str]] = defaultdict(list)
    for e in ix.ev:
        h = e.host
        if h not in pci_hosts or e.gpu is None:
            continue
        g = norm[e.gpu]
        if g is None:
            continue
        if g.startswith("pci:"):
            pcis[h].append((e.time, g))
        else:
            idx_t[h].append(e.time)
            idx_g[h].append(g)
    obs: list[tuple[str, str, str]] = []
    for h, lst in pcis.items():
        ts, gs = idx_t.get(h), idx_g.get(h)
        if not ts or not gs:
            continue  # no index on this host: nothing to tie
        for t, p in lst:
            lo = bisect.bisect_left(ts, t - S.incident_tie_s)
            hi = bisect.bisect_right(ts, t + S.incident_tie_s)
            if hi - lo > 64:
                continue  # a storm's lines from every GPU of the host: no tie to read there
            near = set(gs[lo:hi])
            if len(near) == 1:
                obs.append((h, next(iter(near)), p))
    ties = link_gpu_ids(obs)
    fleet: dict[str, Counter] = defaultdict(Counter)
    for (_h, p), i in ties.items():
        fleet[p][i] += 1
    if fleet:
        for h, g in sorted({(h, g) for h, lst in pcis.items() for _t, g in lst}):
            if (h, g) not in ties and fleet.get(g):
                (top, n), *rest = fleet[g].most_common(2) + [(None, -1)]
                if rest[0][1] < n:
                    ties[(h, g)] = top
    return ties
