"""Rule 3, localisation: occurrences concentrated on a host (or a switch, or a group of hosts
the names suggest) beyond what the exposure there allows."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from .gpus import device_of, dominant_device, gpus_per_host
from .index import Component, Index, fmt_p
from .stats import binom_sf


# ---- 3. localisation
def localise(ix: Index, s: int, idx: list[int], suspects: Sequence[str] = ()) -> list[int]:
    """Take localised events of signature s out of idx; return the rest.

    With ``suspects`` (hosts other signatures already pinned), only those hosts are tested,
    with the correction for that many tests: a second symptom of a known bad host.
    """
    S = ix.S
    known = ix.sig_class(s) in ("hardware", "network")
    alpha = S.alpha_known if known or suspects else S.alpha
    min_k = S.min_localised_known if known or suspects else S.min_localised
    with_host = [i for i in idx if ix.ev[i].host is not None]
    if len(with_host) < min_k:
        return idx
    ranks = [ix.ev[i].rank for i in with_host if ix.ev[i].rank is not None]
    hosts_seen = {ix.ev[i].host for i in with_host}
    # (on one host too: rank 0 of one run always sits on the same host; a text that itself means
    # hardware or network is still tested)
    if ranks and (len(hosts_seen) >= 2 or not known) and sum(1 for r in ranks if r == 0) >= S.rank0_frac * len(ranks):
        return idx  # logged by rank 0 only: where it shows says nothing about where it happens
    # counted per run: a restart with a new job id often lands on the same hosts, and a one-event
    # attempt alone would make its only host the whole of its exposure
    run_of = ix.run_of
    jobs = sorted({run_of[ix.ev[i].job_id] for i in with_host})
    units: dict[str, set[tuple[str, int]]] = defaultdict(set)  # host -> occurrences
    n_job: Counter = Counter()
    for i in with_host:
        e = ix.ev[i]
        if e.host is None:  # not in with_host; narrows the type
            continue
        u = (e.job_id, ix.occ[i])
        if u not in units[e.host]:
            units[e.host].add(u)
            n_job[run_of[e.job_id]] += 1
    k_h = {h: len(u) for h, u in units.items()}
    n = sum(k_h.values())
    # expected occurrences per host: each job's occurrences spread over its hosts by their exposure
    w: dict[str, float] = defaultdict(float)
    for j in jobs:
        jh = ix.run_host.get(j, {})
        tot = sum(jh.values())
        if tot <= 0:
            continue
        for h, x in jh.items():
            w[h] += n_job[j] * x / tot
    W = sum(w.values())
    if W <= 0 or len(w) < 2:
        return idx
    rest = set(idx)
    H = len(w)
    # hosts: each tested against its expected share; Bonferroni over the hosts (or the suspects)
    cands = sorted(k_h, key=lambda h: (-k_h[h] / (w.get(h, 0) / W * n + 1e-9), h))[:8]
    n_tests = H
    if suspects:
        n_tests = len(suspects)
        cands = [h for h in suspects if h in k_h]
    hits: list[tuple[str, int, float, float]] = []
    for h in cands:
        k = k_h[h]
        if k < min_k or h not in w:
            continue
        share = w[h] / W
        p = min(1.0, binom_sf(k, n, share) * n_tests)
        if p < alpha:
            hits.append((h, k, share, p))
    # several pinned hosts under one switch: the switch, not the hosts
    by_sw: dict[str, list[tuple[str, int, float, float]]] = defaultdict(list)
    # ... unless the text says it is the GPU itself (Xid, ECC), or each host's events sit on one GPU
    gpu_bound = ix.sig_class(s) == "hardware" or (
        len(hits) >= 2 and all(_one_gpu(ix, [i for i in with_host if ix.ev[i].host == h]) for h, *_ in hits)
    )
    # a text from inside one process (a CUDA error, a NaN) is no switch's or rack's doing: hosts only
    shared = ix.sig_category(s) not in S.process_local_categories
    if ix.topo and not suspects and not gpu_bound and shared:
        for hit in hits:
            sw = ix.topo.get(hit[0])
            if sw is not None:
                by_sw[sw].append(hit)
    promote: set[str] = set()
    if ix.topo and not suspects and ix.sig_class(s) == "network":
        # a network symptom pinned to a host, with more of it elsewhere under the same switch: the switch
        for hit in hits:
            sw = ix.topo.get(hit[0])
            if sw is not None and any(ix.topo.get(h) == sw and h != hit[0] for h in k_h):
                if hit not in by_sw[sw]:
                    by_sw[sw].append(hit)
                promote.add(sw)
    for sw in sorted(by_sw):
        hs_hits = by_sw[sw]
        if len(hs_hits) < 2 and sw not in promote:
            continue
        hits = [x for x in hits if x not in hs_hits]
        _switch_component(ix, s, sw, with_host, rest, w, W, n, k_h, min(x[3] for x in hs_hits))
    for h, k, share, p in hits:
        take = [i for i in with_host if ix.ev[i].host == h and i in rest]
        if not take:
            continue
        rest.difference_update(take)
        gpus = Counter(ix.ev[i].gpu for i in take if ix.ev[i].gpu is not None)
        scope = {"hosts": [h]}
        gtxt = ""
        if gpus:
            g, gc = gpus.most_common(1)[0]
            if gc >= 0.8 * sum(gpus.values()) and gc >= 2:
                scope["gpus"] = [f"{h}/{g}"]
                gtxt = f", {gc} of them on {g}"
        ev = [
            f"{ix.sig_title(s)}: {k} of {n} occurrences on host {h}{gtxt}; {share * n:.1f} expected from "
            f"the steps it ran in the affected runs ({len(jobs)} runs on {H} hosts; {fmt_p(p)})"
        ]
        ix.add(Component(s, "localised_hardware", ("host", h), take, p, ev, scope, cause_class="hardware"))
    # then one GPU of a host: a bad GPU concentrates on one device, a code bug spreads over ranks
    # (a network text's PCI bus id is its NIC's, and a link fault is a switch's or the host's: not here)
    if ix.sig_class(s) != "network":
        _gpu_hits(ix, s, with_host, rest, w, W, n, len(jobs), min_k, alpha, suspects=suspects)
    # then a spread over several hosts of one switch, none of them alone enough
    if ix.topo and not suspects and shared:
        sw_w: dict[str, float] = defaultdict(float)
        for h, x in w.items():
            sw = ix.topo.get(h)
            if sw is not None:
                sw_w[sw] += x
        left_u: dict[str, set] = defaultdict(set)
        for i in with_host:
            host = ix.ev[i].host
            if i in rest and host is not None:
                left_u[host].add((ix.ev[i].job_id, ix.occ[i]))
        left_k: dict[str, int] = {h: len(u) for h, u in left_u.items()}
        n2 = sum(left_k.values())
        if len(sw_w) >= 2 and n2 >= min_k:
            sw_k: dict[str, int] = defaultdict(int)
            sw_hosts: dict[str, list[str]] = defaultdict(list)
            for h, k in left_k.items():
                sw = ix.topo.get(h)
                if sw is not None and k:
                    sw_k[sw] += k
                    sw_hosts[sw].append(h)
            for sw in sorted(sw_k, key=lambda x: (-sw_k[x] / (sw_w[x] / W * n2 + 1e-9), x))[:3]:
                k = sw_k[sw]
                hs = sw_hosts[sw]
                if len(hs) < 2 or max(left_k[h] for h in hs) > 0.8 * k or k < min_k:
                    continue
                p = min(1.0, binom_sf(k, n2, sw_w[sw] / W) * len(sw_w))
                if p < alpha:
                    _switch_component(ix, s, sw, with_host, rest, w, W, n2, left_k, p)
    return [i for i in idx if i in rest]


def _gpu_hits(ix: Index, s, with_host, rest, w, W, n, n_runs, min_k, alpha, *, suspects: Sequence[str] = ()) -> None:
    """Occurrences on one GPU of a host beyond its share, Bonferroni over every host x GPU: the
    events of s on that host (that GPU, or none named) are its. The share is the host's exposure
    times the share of the text's occurrences ON OTHER HOSTS that name that GPU index (smoothed
    towards 1/GPUs per host): a line logged by local rank 0 sits on GPU 0 of every host and is no
    one GPU's fault; a bad GPU's text is elsewhere spread over indices, or absent.

    With ``suspects`` (hosts other texts already pinned), only their GPUs are tested, corrected for
    that many: a host with one bad GPU is where a second one is looked for, and a GPU other than
    the one already blamed there is a fault of its own (its own hypothesis, its own ticket)."""
    n_gpu = gpus_per_host(ix)
    sus = set(suspects)
    units: dict[tuple[str, str], set] = defaultdict(set)
    for i in with_host:
        d = device_of(ix, i)
        if d is not None:
            units[(ix.ev[i].host, d)].add((ix.ev[i].job_id, ix.occ[i]))
    by_dev: Counter = Counter()
    for (_h, d), u in units.items():
        by_dev[d] += len(u)
    on_host: Counter = Counter()
    for (h, _d), u in units.items():
        on_host[h] += len(u)
    n_tests = (len(sus) if sus else len(w)) * n_gpu
    for (h, d), u in sorted(units.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        k = len(u)
        if k < min_k:
            break
        if h not in w or (sus and h not in sus):
            continue
        others = sum(by_dev.values()) - on_host[h]
        q = (by_dev[d] - k + 1) / (others + n_gpu)
        share = w[h] / W * q
        p = min(1.0, binom_sf(k, n, share) * n_tests)
        if p >= alpha:
            continue
        take = [i for i in with_host if i in rest and ix.ev[i].host == h and device_of(ix, i) in (d, None)]
        if not take:
            continue
        rest.difference_update(take)
        ev = [
            f"{ix.sig_title(s)}: {k} of {n} occurrences on GPU {d} of host {h}; {share * n:.2f} expected "
            f"from the steps that host ran in the affected runs and how the text spreads over GPUs elsewhere "
            f"({n_runs} runs; {fmt_p(p)})"
        ]
        scope = {"hosts": [h], "gpus": [f"{h}/{d}"]}
        ix.add(Component(s, "localised_hardware", ("host", h), take, p, ev, scope, cause_class="hardware"))


def separate_gpus(ix: Index) -> None:
    """Two GPUs of one host pinned by different texts are two faults (two hypotheses, two tickets):
    their components are keyed by host and GPU, and a host-level text's lines on either GPU go with
    that GPU. A host with one pinned GPU keeps one hypothesis for all its texts."""
    by_host: dict[str, list[tuple[Component, str | None]]] = defaultdict(list)
    for c in ix.components:
        if c.kind == "localised_hardware" and len(c.key) == 2 and c.key[0] == "host":
            by_host[c.key[1]].append((c, dominant_device(ix, c.events)))
    for h, comps in sorted(by_host.items()):
        devs = sorted({d for _c, d in comps if d is not None})
        if len(devs) < 2:
            continue
        for c, d in comps:
            if d is not None:
                c.key = ("host", h, d)
                c.scope = {"hosts": [h], "gpus": [f"{h}/{d}"]}
                continue
            # a host-level component (its text spread over the host's GPUs): each pinned GPU's lines to it
            for dv in devs:
                idx = [i for i in c.events if device_of(ix, i) == dv]
                if not idx:
                    continue
                gone = set(idx)
                c.events = [i for i in c.events if i not in gone]
                ev = [
                    f"{ix.sig_title(c.sig)}: {len(idx)} of its occurrences on host {h} are on GPU {dv}, blamed by another text"
                ]
                scope = {"hosts": [h], "gpus": [f"{h}/{dv}"]}
                ix.components.append(
                    Component(c.sig, c.kind, ("host", h, dv), idx, c.p, ev, scope, cause_class=c.cause_class)
                )


def _one_gpu(ix: Index, idx: list[int]) -> bool:
    g = Counter(ix.ev[i].gpu for i in idx if ix.ev[i].gpu is not None)
    return bool(g) and g.most_common(1)[0][1] >= 0.8 * len(idx) and len(idx) >= 2


def _switch_component(ix: Index, s, sw, with_host, rest, w, W, n, k_h, p) -> None:
    take = [i for i in with_host if ix.topo.get(ix.ev[i].host) == sw and i in rest]
    if not take:
        return
    rest.difference_update(take)
    hs = sorted({ix.ev[i].host for i in take})
    where = f"{sw} (a group the host names suggest)" if ix.topo_from_names else f"switch {sw}"
    k = len({(ix.ev[i].job_id, ix.occ[i], ix.ev[i].host) for i in take})
    exp_ = sum(x for h, x in w.items() if ix.topo.get(h) == sw) / W * n
    ev = [
        f"{ix.sig_title(s)}: {k} of {n} occurrences on {len(hs)} hosts under {where} "
        f"({', '.join(hs[:6])}{'…' if len(hs) > 6 else ''}); {exp_:.1f} expected from the affected "
        f"jobs' steps there ({fmt_p(p)})"
    ]
    ix.add(Component(s, "switch", ("switch", sw), take, p, ev, {"switches": [sw], "hosts": hs}, cause_class="network"))
