"""The hypothesis engine: from events with signature ids to proposed causes.

Pure: no I/O, no clock. One pass builds the exposure (which job ran which versions on which
hosts for how many steps, from the events themselves: the steps each (job, host) and each
(job, version set) covered); then each signature's events go through the evidence rules in a
fixed order, each rule taking the events it explains. The unit of counting is an *occurrence*:
events of one signature in one job less than 30 s apart count once.

1. **storms**: bursts of one signature from many hosts/ranks within seconds are set aside;
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

import bisect
import gc
import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .model import Constraints, EventRecord, Proposal, SignatureInfo, Topology
from .stats import binom_sf, poisson_cdf, strength

__all__ = ["analyze", "Settings"]


@dataclass(frozen=True)
class Settings:
    burst_gap_s: float = 30.0  # events of one signature in one job closer than this are one occurrence
    storm_min_events: int = 8
    storm_min_hosts: int = 3
    data_min_repeats: int = 3  # same (job, step) failing in this many separate occurrences
    alpha: float = 1e-3  # family-wise, after Bonferroni
    alpha_known: float = 1e-2  # when the text's known meaning (hardware/network) agrees with localisation
    min_localised: int = 3
    min_localised_known: int = 2
    min_onset: int = 5  # occurrences needed before an onset is claimed
    alpha_onset: float = 5e-3  # family-wise over all version dimensions and cut points
    onset_stray_frac: float = 0.05  # tolerated share of occurrences outside the onset versions
    onset_stray_of_expected: float = 0.1  # ... and at most this share of what the rate would predict there
    precursor_window_s: float = 900.0  # a watchdog fires ~600 s after the hang starts
    cooccur_window_s: float = 60.0
    cooccur_frac: float = 0.7
    rank0_frac: float = 0.9


DEFAULT = Settings()


# --------------------------------------------------------------------------- helpers

_NUM = re.compile(r"(\d+)")


def version_key(v: str) -> tuple:
    """Natural order for version strings: v1.10 > v1.9, 2.3.0 < 2.3.1, 2.3.0+cu121 after 2.3.0."""
    parts = _NUM.split(v.lstrip("vV"))
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p != "")


def fmt_n(x: float) -> str:
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.1f}"
    return f"{int(x):,}"


def fmt_p(p: float) -> str:
    if p <= 0:
        return "p<1e-300"
    if p >= 0.01:
        return f"p={p:.2f}"
    e = math.floor(math.log10(p))
    return f"p≈1e{e}"


def confidence_from(p: float, *, agree: bool = True) -> float:
    s = min(strength(p), 60.0)
    c = s / (s + 3.0)
    if not agree:
        c *= 0.8
    return round(min(0.97, max(0.0, c)), 3)


def _near(sorted_times: list[float], t: float, w: float) -> bool:
    k = bisect.bisect_left(sorted_times, t - w)
    return k < len(sorted_times) and sorted_times[k] <= t + w


@dataclass
class Component:
    """Events of one signature explained by one evidence profile."""

    sig: int
    kind: str
    key: tuple
    events: list[int]  # indices into the sorted event list
    p: float
    evidence: list[str]
    scope: dict[str, list[str]] = field(default_factory=dict)
    compat: frozenset = frozenset()  # other keys this component is consistent with (onset)
    cause_class: str = "unknown"
    label: str = ""  # e.g. "since torch 2.3.0"


class _UF:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x


# --------------------------------------------------------------------------- exposure


class Exposure:
    """Steps each job ran, per host and per version segment, seen through the events."""

    def __init__(self, events: Sequence[EventRecord]):
        job_min: dict[str, float] = {}
        job_host_max: dict[tuple[str, str], float] = {}
        seg: dict[tuple[str, tuple], list[float]] = {}
        job_tmin: dict[str, float] = {}
        job_tmax: dict[str, float] = {}
        job_has_step: set[str] = set()
        job_host_t: dict[tuple[str, str], float] = {}
        seg_t: dict[tuple[str, tuple], list[float]] = {}
        for e in events:
            j = e.job_id
            t = e.time
            if j not in job_tmin or t < job_tmin[j]:
                job_tmin[j] = t
            if j not in job_tmax or t > job_tmax[j]:
                job_tmax[j] = t
            vk = (e.code_version, e.versions)
            sk = (j, vk)
            st = seg_t.get(sk)
            if st is None:
                seg_t[sk] = [t, t]
            else:
                if t < st[0]:
                    st[0] = t
                if t > st[1]:
                    st[1] = t
            if e.host is not None:
                hk = (j, e.host)
                if job_host_t.get(hk, -1e300) < t:
                    job_host_t[hk] = t
            s = e.step
            if s is None:
                continue
            job_has_step.add(j)
            if j not in job_min or s < job_min[j]:
                job_min[j] = s
            if e.host is not None:
                hk = (j, e.host)
                if job_host_max.get(hk, -1) < s:
                    job_host_max[hk] = s
            sv = seg.get(sk)
            if sv is None:
                seg[sk] = [s, s]
            else:
                if s < sv[0]:
                    sv[0] = s
                if s > sv[1]:
                    sv[1] = s
        self.unit: dict[str, str] = {}
        # exposure per (job, host): steps from the job's first step to the host's last; minutes if no steps
        self.job_host: dict[str, dict[str, float]] = defaultdict(dict)
        for (j, h), tmax in job_host_t.items():
            if j in job_has_step:
                hm = job_host_max.get((j, h))
                x = (hm - job_min[j] + 1) if hm is not None else 1.0
            else:
                x = (tmax - job_tmin[j]) / 60.0 + 1
            self.job_host[j][h] = max(1.0, float(x))
        self.segments: list[tuple[str, str | None, tuple, float]] = []  # (job, code, versions, exposure)
        for (j, vk), (t0, t1) in seg_t.items():
            if j in job_has_step:
                sv = seg.get((j, vk))
                x = (sv[1] - sv[0] + 1) if sv else 1.0
                self.unit[j] = "steps"
            else:
                x = (t1 - t0) / 60.0 + 1
                self.unit[j] = "minutes"
            self.segments.append((j, vk[0], vk[1], max(1.0, float(x))))
        self.segments.sort(key=lambda s: (s[0], str(s[1]), s[2]))
        self.job_hosts = {j: sorted(hs) for j, hs in self.job_host.items()}


# --------------------------------------------------------------------------- the engine


class _Engine:
    def __init__(self, events, signatures, topology, constraints, settings: Settings, exposure=()):
        self.ev: list[EventRecord] = sorted(events, key=lambda e: (e.time, e.id))
        self.sigs: Mapping[int, SignatureInfo] = signatures
        self.topo: Mapping[str, str] = topology or {}
        self.cons = constraints
        self.S = settings
        # Progress reports widen what each job is known to have run (hosts, versions, steps);
        # they are not failures, so only the exposure sees them.
        self.expo = Exposure(self.ev + sorted(exposure, key=lambda e: (e.time, e.id)) if exposure else self.ev)
        self.by_sig: dict[int, list[int]] = defaultdict(list)
        self.by_job: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(self.ev):
            self.by_sig[e.signature_id].append(i)
            self.by_job[e.job_id].append(i)
        self.job_times = {j: [self.ev[i].time for i in idx] for j, idx in self.by_job.items()}
        self.occ: list[int] = [0] * len(self.ev)  # occurrence (burst) id per event
        self.storm_bursts: list[tuple[int, str, list[int]]] = []  # (sig, job, event indices)
        self.in_storm: set[int] = set()
        self.components: list[Component] = []
        self.taken: set[int] = set()

    def sig_title(self, s: int) -> str:
        si = self.sigs.get(s)
        return si.title if si else f"signature {s}"

    def sig_class(self, s: int) -> str:
        si = self.sigs.get(s)
        return si.cause_class if si else "unknown"

    # ---- 1. bursts and storms
    def bursts(self) -> None:
        S = self.S
        nocc = 0
        for s in sorted(self.by_sig):
            per_job: dict[str, list[int]] = defaultdict(list)
            for i in self.by_sig[s]:
                per_job[self.ev[i].job_id].append(i)
            for j in sorted(per_job):
                cur: list[int] = []
                last = None
                groups = []
                for i in per_job[j]:
                    t = self.ev[i].time
                    if last is not None and t - last > S.burst_gap_s:
                        groups.append(cur)
                        cur = []
                    cur.append(i)
                    last = t
                if cur:
                    groups.append(cur)
                for g in groups:
                    nocc += 1
                    for i in g:
                        self.occ[i] = nocc
                    if len(g) >= S.storm_min_events:
                        hosts = {self.ev[i].host for i in g if self.ev[i].host is not None}
                        ranks = {self.ev[i].rank for i in g if self.ev[i].rank is not None}
                        if len(hosts) >= S.storm_min_hosts or (not hosts and len(ranks) >= S.storm_min_events):
                            self.storm_bursts.append((s, j, g))
                            self.in_storm.update(g)

    # ---- 2. recurrence at a step
    def data_steps(self) -> None:
        S = self.S
        # one flat pass: (job, step, sig) -> occurrences, and the most frequent reader (rank or host)
        flat: dict[tuple, set[int] | int] = {}
        where: dict[tuple, int] = {}
        ev, occ, storm = self.ev, self.occ, self.in_storm
        for s in sorted(self.by_sig):
            for i in self.by_sig[s]:
                e = ev[i]
                if e.step is None or i in storm:
                    continue
                k3 = (e.job_id, e.step, s)
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
                if cur is not None:
                    k4 = (e.job_id, e.step, s, e.rank if e.rank is not None else e.host)
                    where[k4] = where.get(k4, 1) + 1
        distinct_keys_per_sig = Counter(k3[2] for k3 in flat)
        same_reader: dict[tuple, int] = {}
        for kk, v in where.items():
            if v > same_reader.get(kk[:3], 0):
                same_reader[kk[:3]] = v
        keys: dict[tuple[str, int], dict[int, set[int]]] = defaultdict(dict)
        primary: dict[int, list[tuple[str, int]]] = defaultdict(list)
        per_job_sig: dict[tuple[str, int], list[tuple[str, int, int]]] = defaultdict(list)
        for k3 in sorted(k for k, v in flat.items() if not isinstance(v, int)):
            occs = flat[k3]
            if len(occs) >= S.data_min_repeats and same_reader.get(k3, 0) >= S.data_min_repeats:
                per_job_sig[(k3[0], k3[2])].append(k3)
        if per_job_sig:
            occ_in_job: Counter = Counter()
            for k3, v in flat.items():
                if (k3[0], k3[2]) in per_job_sig:
                    occ_in_job[(k3[0], k3[2])] += 1 if isinstance(v, int) else len(v)
            for js, k3s in sorted(per_job_sig.items()):
                share = sum(len(flat[k3]) for k3 in k3s) / occ_in_job[js]
                # a bad record: few such steps in the job, or most of the signature's failures there
                if len(k3s) <= 2 or share >= 0.5:
                    for k3 in k3s:
                        primary[k3[2]].append(k3[:2])
        cand_keys = {k for ks in primary.values() for k in ks}
        for k3, v in flat.items():
            if k3[:2] in cand_keys:
                keys[k3[:2]][k3[2]] = {v} if isinstance(v, int) else v
        bad_keys: dict[tuple[str, int], int] = {}
        primary_of: dict[tuple[str, int], set[int]] = defaultdict(set)
        for s, ks in sorted(primary.items()):
            # a signature that "recurs" at many steps is periodic logging, not a bad record
            if len(ks) > max(3, 0.05 * distinct_keys_per_sig[s]):
                continue
            for k in ks:
                if self.stops(s, k) >= S.data_min_repeats - 1:
                    bad_keys.setdefault(k, len(keys[k][s]))
                    primary_of[k].add(s)
        if not bad_keys:
            return
        for k in sorted(bad_keys):
            j, step = k
            prim_t = sorted(self.ev[i].time for s in primary_of[k] for i in self.by_sig[s]
                            if self.ev[i].job_id == j and self.ev[i].step == step)
            for s in sorted(keys[k]):
                occs = keys[k][s]
                idx = [i for i in self.by_sig[s] if self.ev[i].job_id == j and self.ev[i].step == step
                       and i not in self.taken and i not in self.in_storm]
                if len(occs) < 2 and s not in primary_of[k]:
                    # a lone event at the bad step joins only when it came with the failure there
                    idx = [i for i in idx if _near(prim_t, self.ev[i].time, 120.0)]
                if not idx:
                    continue
                n_occ = len(occs)
                # chance that one job's failures hit the same step this often: tiny for >= 3
                p = min(1.0, 10.0 ** (-(n_occ * 1.5)))
                ev = [f"{self.sig_title(s)}: job {j} stopped at step {step:,} in {n_occ} separate runs "
                      f"(restarts from checkpoint reached the same step and failed again)"]
                self.add(Component(s, "data_step", ("data", j, step), idx, p, ev,
                                   {"jobs": [j], "steps": [str(step)]}, cause_class="data"))

    def stops(self, s: int, k: tuple[str, int]) -> int:
        """How many occurrences of s at (job, step) were followed by a restart (the job's next step
        seen a minute later is not beyond it), as a job failing at that step would be."""
        j, step = k
        tk = self.job_times[j]
        idx = self.by_job[j]
        n = 0
        seen_occ = set()
        for i in self.by_sig[s]:
            e = self.ev[i]
            if e.job_id != j or e.step != step or self.occ[i] in seen_occ:
                continue
            seen_occ.add(self.occ[i])
            lo = bisect.bisect_right(tk, e.time + 60.0)
            hi = bisect.bisect_right(tk, e.time + 6 * 3600.0)
            later: list[int] = []
            for q in range(lo, min(hi, lo + 500)):
                st = self.ev[idx[q]].step
                if st is not None:
                    later.append(st)
                    if len(later) == 3:
                        break
            # the job's next steps do not go past this one (it restarted from a checkpoint, or stopped);
            # a stray line beyond it (a late log, a wrong clock) is outvoted
            if not later or sum(1 for x in later if x > step) <= 0.5 * len(later):
                n += 1
        return n

    def add(self, c: Component) -> None:
        self.components.append(c)
        self.taken.update(c.events)

    # ---- 3. localisation
    def localise(self, s: int, idx: list[int], suspects: Sequence[str] = ()) -> list[int]:
        """Take localised events of signature s out of idx; return the rest.

        With ``suspects`` (hosts other signatures already pinned), only those hosts are tested,
        with the correction for that many tests: a second symptom of a known bad host.
        """
        S = self.S
        known = self.sig_class(s) in ("hardware", "network")
        alpha = S.alpha_known if known or suspects else S.alpha
        min_k = S.min_localised_known if known or suspects else S.min_localised
        with_host = [i for i in idx if self.ev[i].host is not None]
        if len(with_host) < min_k:
            return idx
        ranks = [self.ev[i].rank for i in with_host if self.ev[i].rank is not None]
        hosts_seen = {self.ev[i].host for i in with_host}
        if ranks and len(hosts_seen) >= 2 and sum(1 for r in ranks if r == 0) >= S.rank0_frac * len(ranks):
            return idx  # logged by rank 0 only: where it shows says nothing about where it happens
        jobs = sorted({self.ev[i].job_id for i in with_host})
        units: dict[str, set[tuple[str, int]]] = defaultdict(set)  # host -> occurrences
        n_job: Counter = Counter()
        for i in with_host:
            e = self.ev[i]
            u = (e.job_id, self.occ[i])
            if u not in units[e.host]:
                units[e.host].add(u)
                n_job[e.job_id] += 1
        k_h = {h: len(u) for h, u in units.items()}
        n = sum(k_h.values())
        # expected occurrences per host: each job's occurrences spread over its hosts by their exposure
        w: dict[str, float] = defaultdict(float)
        for j in jobs:
            jh = self.expo.job_host.get(j, {})
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
        gpu_bound = self.sig_class(s) == "hardware" or (len(hits) >= 2 and all(
            self._one_gpu([i for i in with_host if self.ev[i].host == h]) for h, *_ in hits))
        if self.topo and not suspects and not gpu_bound:
            for hit in hits:
                sw = self.topo.get(hit[0])
                if sw is not None:
                    by_sw[sw].append(hit)
        promote: set[str] = set()
        if self.topo and not suspects and self.sig_class(s) == "network":
            # a network symptom pinned to a host, with more of it elsewhere under the same switch: the switch
            for hit in hits:
                sw = self.topo.get(hit[0])
                if sw is not None and any(self.topo.get(h) == sw and h != hit[0] for h in k_h):
                    if hit not in by_sw[sw]:
                        by_sw[sw].append(hit)
                    promote.add(sw)
        for sw in sorted(by_sw):
            hs_hits = by_sw[sw]
            if len(hs_hits) < 2 and sw not in promote:
                continue
            hits = [x for x in hits if x not in hs_hits]
            self._switch_component(s, sw, with_host, rest, w, W, n, k_h, min(x[3] for x in hs_hits))
        for h, k, share, p in hits:
            take = [i for i in with_host if self.ev[i].host == h and i in rest]
            if not take:
                continue
            rest.difference_update(take)
            gpus = Counter(self.ev[i].gpu for i in take if self.ev[i].gpu is not None)
            scope = {"hosts": [h]}
            gtxt = ""
            if gpus:
                g, gc = gpus.most_common(1)[0]
                if gc >= 0.8 * sum(gpus.values()) and gc >= 2:
                    scope["gpus"] = [f"{h}/{g}"]
                    gtxt = f", {gc} of them on {g}"
            ev = [f"{self.sig_title(s)}: {k} of {n} occurrences on host {h}{gtxt}; {share * n:.1f} expected from "
                  f"the steps it ran in the affected jobs ({len(jobs)} jobs on {H} hosts; {fmt_p(p)})"]
            self.add(Component(s, "localised_hardware", ("host", h), take, p, ev, scope, cause_class="hardware"))
        # then a spread over several hosts of one switch, none of them alone enough
        if self.topo and not suspects:
            sw_w: dict[str, float] = defaultdict(float)
            for h, x in w.items():
                sw = self.topo.get(h)
                if sw is not None:
                    sw_w[sw] += x
            left_u: dict[str, set] = defaultdict(set)
            for i in with_host:
                if i in rest:
                    left_u[self.ev[i].host].add((self.ev[i].job_id, self.occ[i]))
            left_k: dict[str, int] = {h: len(u) for h, u in left_u.items()}
            n2 = sum(left_k.values())
            if len(sw_w) >= 2 and n2 >= min_k:
                sw_k: dict[str, int] = defaultdict(int)
                sw_hosts: dict[str, list[str]] = defaultdict(list)
                for h, k in left_k.items():
                    sw = self.topo.get(h)
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
                        self._switch_component(s, sw, with_host, rest, w, W, n2, left_k, p)
        return [i for i in idx if i in rest]

    def _one_gpu(self, idx: list[int]) -> bool:
        g = Counter(self.ev[i].gpu for i in idx if self.ev[i].gpu is not None)
        return bool(g) and g.most_common(1)[0][1] >= 0.8 * len(idx) and len(idx) >= 2

    def _switch_component(self, s, sw, with_host, rest, w, W, n, k_h, p) -> None:
        take = [i for i in with_host if self.topo.get(self.ev[i].host) == sw and i in rest]
        if not take:
            return
        rest.difference_update(take)
        hs = sorted({self.ev[i].host for i in take})
        k = len({(self.ev[i].job_id, self.occ[i], self.ev[i].host) for i in take})
        exp_ = sum(x for h, x in w.items() if self.topo.get(h) == sw) / W * n
        ev = [f"{self.sig_title(s)}: {k} of {n} occurrences on {len(hs)} hosts under switch {sw} "
              f"({', '.join(hs[:6])}{'…' if len(hs) > 6 else ''}); {exp_:.1f} expected from the affected "
              f"jobs' steps there ({fmt_p(p)})"]
        self.add(Component(s, "switch", ("switch", sw), take, p, ev, {"switches": [sw], "hosts": hs},
                           cause_class="network"))

    # ---- 4. onset
    def onset(self, s: int, idx: list[int]) -> list[int]:
        S = self.S
        occ_first: dict[int, int] = {}
        for i in idx:
            occ_first.setdefault(self.occ[i], i)
        n_tot = len(occ_first)
        if n_tot < S.min_onset:
            return idx
        # dimensions and value of each occurrence
        dims: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
        for (_j, code, vers, x) in self.expo.segments:
            if code is not None:
                dims["code_version"][code][0] += x
            for name, v in vers:
                dims[name][v][0] += x
        occ_val: dict[str, list[str | None]] = defaultdict(list)
        for o, i in sorted(occ_first.items()):
            e = self.ev[i]
            vd = dict(e.versions)
            for d in dims:
                v = e.code_version if d == "code_version" else vd.get(d)
                occ_val[d].append(v)
                if v is not None and v in dims[d]:
                    dims[d][v][1] += 1
        tests: list[tuple[float, str, tuple[str, ...], dict]] = []
        n_cands = 0
        for d in sorted(dims):
            vals = sorted(dims[d], key=version_key)
            if len(vals) < 2:
                continue
            E_tot = sum(dims[d][v][0] for v in vals)
            n_d = sum(dims[d][v][1] for v in vals)
            if n_d < S.min_onset or E_tot <= 0:
                continue
            cand_sets: list[tuple[str, tuple[str, ...]]] = []
            for k in range(1, len(vals)):
                cand_sets.append(("since", tuple(vals[k:])))
                cand_sets.append(("until", tuple(vals[:k])))
            if len(vals) >= 3:
                for v in vals:
                    cand_sets.append(("only", (v,)))
            seen = set()
            for mode, A in cand_sets:
                if A in seen:
                    continue
                seen.add(A)
                n_cands += 1
                Aset = set(A)
                E_in = sum(dims[d][v][0] for v in A)
                n_in = sum(dims[d][v][1] for v in A)
                E_out = E_tot - E_in
                n_out = n_d - n_in
                if E_out <= 0 or n_in <= 0 or n_out > S.onset_stray_frac * n_d:
                    continue
                mu = n_d * E_out / E_tot
                if n_out > S.onset_stray_of_expected * mu:
                    continue  # present there too, only less often: a rate difference, not an onset
                p = poisson_cdf(n_out, mu)
                # every version inside A that ran long enough must show it too
                ok = True
                for v in A:
                    Ev, nv = dims[d][v]
                    if nv == 0 and math.exp(-n_in * Ev / E_in) < 0.01:
                        ok = False
                        break
                if not ok:
                    continue
                tests.append((p, d, A, {"mode": mode, "E_in": E_in, "E_out": E_out, "n_in": n_in, "n_out": n_out,
                                        "mu": mu, "out": tuple(v for v in vals if v not in Aset), "n_d": n_d}))
        if not tests:
            return idx
        tests = [(min(1.0, p * n_cands), d, A, info) for p, d, A, info in tests]
        tests.sort(key=lambda t: (t[0], t[1], t[2]))
        best_p, d, A, info = tests[0]
        if best_p >= S.alpha_onset:
            return idx
        compat = frozenset((d2, A2) for p2, d2, A2, _ in tests if p2 < S.alpha_onset)
        # the same partition of exposure under another name (code v1.4 always with torch 2.3.0): say both
        confounded = [(d2, A2) for p2, d2, A2, _ in tests if p2 <= best_p * 1.0001 and (d2, A2) != (d, A)]
        Aset = set(A)
        take = []
        keep = []
        vd_cache = {}
        for i in idx:
            e = self.ev[i]
            if d == "code_version":
                v = e.code_version
            else:
                v = vd_cache.get(e.versions)
                if v is None:
                    v = dict(e.versions).get(d, "")
                    vd_cache[e.versions] = v
            (take if v in Aset else keep).append(i)
        dn = "code" if d == "code_version" else d
        versions = [f"{d}={v}" for v in A]
        for d2, A2 in confounded:
            versions += [f"{d2}={v}" for v in A2]
        unit = "steps"
        out_txt = ", ".join(info["out"])
        mode = info["mode"]
        where = {"since": f"since {dn} {A[0]}", "until": f"up to {dn} {A[-1]} (gone after)",
                 "only": f"only on {dn} {A[0]}"}[mode]
        hosts = Counter(self.ev[i].host for i in take if self.ev[i].host is not None)
        top_share = (hosts.most_common(1)[0][1] / sum(hosts.values())) if hosts else 0.0
        jobs_in = len({self.ev[i].job_id for i in take})
        ranks = [self.ev[i].rank for i in take if self.ev[i].rank is not None]
        rank0 = bool(ranks) and sum(1 for r in ranks if r == 0) >= S.rank0_frac * len(ranks)
        ev = [
            f"{self.sig_title(s)}: {info['n_out']} occurrences in {fmt_n(info['E_out'])} {unit} on {dn} {out_txt} "
            f"({info['mu']:.1f} expected at the rate seen elsewhere); {info['n_in']} in "
            f"{fmt_n(info['E_in'])} {unit} on {dn} {', '.join(A)} ({fmt_p(best_p)})",
            f"{self.sig_title(s)}: seen in {jobs_in} jobs, " + (
                "logged by rank 0 only (so where it shows says nothing about where it happens)" if rank0 else
                f"on {len(hosts)} hosts, no host above {top_share:.0%}"),
        ]
        if confounded:
            ev.append("cannot tell apart from " + ", ".join(f"{d2} {'/'.join(A2)}" for d2, A2 in confounded)
                      + " (the same jobs ran both)")
        self.add(Component(s, "regression", ("onset", d, A), take, best_p, ev, {"versions": versions},
                           compat=compat, cause_class="software", label=where))
        return keep

    def onset_split(self, s: int, idx: list[int], keys: list[tuple[str, tuple[str, ...]]],
                    labels: Mapping[tuple, str]) -> None:
        S = self.S
        occ_first: dict[int, int] = {}
        for i in idx:
            occ_first.setdefault(self.occ[i], i)
        n = len(occ_first)
        if n < S.min_onset:
            return

        def val(code, vers, d):
            if d == "code_version":
                return code
            for name, v in vers:
                if name == d:
                    return v
            return None

        def which(code, vers, chosen):
            for ki, (d, A) in enumerate(chosen):
                if val(code, vers, d) in A:
                    return ki
            return -1

        chosen: list[tuple[str, tuple[str, ...]]] = []
        for d, A in keys:
            inside = sum(1 for i in occ_first.values()
                         if which(self.ev[i].code_version, self.ev[i].versions, chosen) < 0
                         and val(self.ev[i].code_version, self.ev[i].versions, d) in A)
            if inside >= 2:
                chosen.append((d, A))
        if len(chosen) < 2:
            return
        # where two onsets overlap (jobs on both), give the events to the one with the higher rate
        # where it is alone: the likelier source of any one event there
        rate: dict[int, float] = {}
        for ki, (d, A) in enumerate(chosen):
            others = [c for kj, c in enumerate(chosen) if kj != ki]
            E_alone = sum(x for (_j, code, vers, x) in self.expo.segments
                          if val(code, vers, d) in A and which(code, vers, others) < 0)
            n_alone = sum(1 for i in occ_first.values()
                          if val(self.ev[i].code_version, self.ev[i].versions, d) in A
                          and which(self.ev[i].code_version, self.ev[i].versions, others) < 0)
            rate[ki] = n_alone / E_alone if E_alone > 0 else 0.0
        chosen = [chosen[ki] for ki in sorted(rate, key=lambda k: (-rate[k], k))]
        E_tot = E_out = 0.0
        for (_j, code, vers, x) in self.expo.segments:
            E_tot += x
            if which(code, vers, chosen) < 0:
                E_out += x
        n_out = sum(1 for i in occ_first.values() if which(self.ev[i].code_version, self.ev[i].versions, chosen) < 0)
        if E_tot <= 0 or E_out <= 0:
            return
        mu = n * E_out / E_tot
        if n_out > S.onset_stray_frac * n or n_out > S.onset_stray_of_expected * mu:
            return
        p = min(1.0, poisson_cdf(n_out, mu) * len(keys))
        if p >= S.alpha_onset:
            return
        parts: dict[int, list[int]] = defaultdict(list)
        for i in idx:
            k = which(self.ev[i].code_version, self.ev[i].versions, chosen)
            if k >= 0:
                parts[k].append(i)
        for k, take in sorted(parts.items()):
            d, A = chosen[k]
            dn = "code" if d == "code_version" else d
            other = "; ".join(f"{'code' if d2 == 'code_version' else d2} {', '.join(A2)}"
                              for k2, (d2, A2) in enumerate(chosen) if k2 != k)
            ev = [f"{self.sig_title(s)}: {n_out} occurrences in {fmt_n(E_out)} steps outside {dn} {', '.join(A)} "
                  f"and {other} ({mu:.1f} expected); {len({self.occ[i] for i in take})} on {dn} {', '.join(A)} "
                  f"({fmt_p(p)}): one text, split between two onsets"]
            self.add(Component(s, "regression", ("onset", d, A), take, p, ev,
                               {"versions": [f"{d}={v}" for v in A]}, compat=frozenset({(d, A)}),
                               cause_class="software", label=labels.get((d, A), f"on {dn} {', '.join(A)}")))

    # ---- 5. merge into hypotheses
    def merge(self) -> list[list[int]]:
        comps = self.components
        uf = _UF(len(comps))
        sigsets = [{c.sig} for c in comps]

        def apart_ok(a: int, b: int) -> bool:
            ra, rb = uf.find(a), uf.find(b)
            both = sigsets[ra] | sigsets[rb]
            for g in self.cons.apart:
                if len(both & g) >= 2:
                    return False
            return True

        def union(a: int, b: int, force: bool = False) -> None:
            ra, rb = uf.find(a), uf.find(b)
            if ra == rb:
                return
            if not force and not apart_ok(a, b):
                return
            lo, hi = min(ra, rb), max(ra, rb)
            uf.parent[hi] = lo
            sigsets[lo] |= sigsets[hi]

        # human merges first
        by_sig_comp: dict[int, list[int]] = defaultdict(list)
        for ci, c in enumerate(comps):
            by_sig_comp[c.sig].append(ci)
        for g in self.cons.together:
            members = []
            for s in sorted(g):
                cs = by_sig_comp.get(s, [])
                if cs:
                    members.append(max(cs, key=lambda ci: (len(comps[ci].events), -ci)))
            for a, b in zip(members, members[1:]):
                union(a, b, force=True)
        # same key
        first: dict[tuple, int] = {}
        for ci, c in enumerate(comps):
            k = c.key
            if k[0] == "data":
                k = ("data", k[1], k[2])
            if k in first:
                union(first[k], ci)
            else:
                first[k] = ci
        # onsets: mutual consistency
        ons = [ci for ci, c in enumerate(comps) if c.kind == "regression"]
        for x in range(len(ons)):
            for y in range(x + 1, len(ons)):
                a, b = comps[ons[x]], comps[ons[y]]
                ka, kb = a.key[1:], b.key[1:]
                if ka == kb or (ka in b.compat and kb in a.compat):
                    union(ons[x], ons[y])
        groups: dict[int, list[int]] = defaultdict(list)
        for ci in range(len(comps)):
            groups[uf.find(ci)].append(ci)
        return [groups[r] for r in sorted(groups)]

    # ---- run
    def run(self) -> list[Proposal]:
        self.bursts()
        self.data_steps()
        rest: dict[int, list[int]] = {}
        for s in sorted(self.by_sig):
            idx = [i for i in self.by_sig[s] if i not in self.taken and i not in self.in_storm]
            if idx:
                rest[s] = self.localise(s, idx)
        suspects = sorted({c.key[1] for c in self.components if c.key[0] == "host"})
        left: dict[int, list[int]] = {}
        for s, idx in rest.items():
            if idx and suspects:
                idx = self.localise(s, idx, suspects)
            if idx:
                n_before = len(self.components)
                keep = self.onset(s, idx)
                if len(self.components) == n_before:
                    left[s] = keep
        # a symptom shared by two regressions (one text, two onsets): split it by the known onsets
        known = sorted({(c.key[1], c.key[2]): c.p for c in self.components if c.kind == "regression"}.items(),
                       key=lambda kv: (kv[1], kv[0]))
        labels = {(c.key[1], c.key[2]): c.label for c in self.components if c.kind == "regression"}
        if len(known) >= 2:
            for s, idx in left.items():
                self.onset_split(s, idx, [k for k, _ in known], labels)
        groups = self.merge()
        hyps = [_Hyp(self, [self.components[ci] for ci in g]) for g in groups]
        owner: dict[int, int] = {}
        for hi, h in enumerate(hyps):
            for i in h.events:
                owner[i] = hi
        self.cooccur(hyps, owner)
        self.storms(hyps, owner)
        self.human_only(hyps, owner)
        out = [h.proposal() for h in hyps if h.events]
        out.sort(key=lambda p: (-len(p.event_ids), p.key))
        return out

    # ---- 6. co-occurrence
    def cooccur(self, hyps: list["_Hyp"], owner: dict[int, int]) -> None:
        S = self.S
        if not hyps:
            return
        times: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for i, hi in owner.items():
            times[self.ev[i].job_id].append((self.ev[i].time, hi))
        for j in times:
            times[j].sort()
        tkeys = {j: [t for t, _ in v] for j, v in times.items()}
        for s in sorted(self.by_sig):
            left = [i for i in self.by_sig[s] if i not in owner and i not in self.in_storm]
            if not left:
                continue
            occs: dict[int, list[int]] = defaultdict(list)
            for i in left:
                occs[self.occ[i]].append(i)
            if len(occs) < 3:
                continue
            votes: Counter = Counter()
            near_of: dict[int, set[int]] = {}
            for o, ii in occs.items():
                e = self.ev[ii[0]]
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
            if not self.apart_allows(hyps[h].sigs | {s}):
                continue
            # only the occurrences that sit next to it; the rest stay unexplained
            ids = [i for o, ii in occs.items() if h in near_of.get(o, ()) for i in ii]
            hyps[h].add_events(s, ids, f"{self.sig_title(s)}: {v} of {len(occs)} occurrences within "
                                       f"{int(S.cooccur_window_s)} s of this cause's other events in the same job")
            for i in ids:
                owner[i] = h

    def apart_allows(self, sigs: set[int]) -> bool:
        return all(len(sigs & g) < 2 for g in self.cons.apart)

    # ---- 7. storms and their precursors
    def storms(self, hyps: list["_Hyp"], owner: dict[int, int]) -> None:
        S = self.S
        if not self.storm_bursts:
            return
        storm_sigs = {s for s, _, _ in self.storm_bursts}
        # candidate precursors: for each burst, signatures with an event shortly before it in the job
        pre_count: Counter = Counter()
        bursts_per_sig = Counter(s for s, _, _ in self.storm_bursts)
        starts: list[tuple[int, str, float, float]] = []
        for s, j, g in self.storm_bursts:
            t0 = self.ev[g[0]].time
            starts.append((s, j, t0, self.ev[g[-1]].time))
            tk = self.job_times[j]
            lo = bisect.bisect_left(tk, t0 - S.precursor_window_s)
            hi = bisect.bisect_right(tk, t0 + 2.0)
            seen = set()
            for k in range(lo, hi):
                i = self.by_job[j][k]
                ps = self.ev[i].signature_id
                if ps in storm_sigs and i in self.in_storm:
                    continue
                if ps == s:
                    continue
                seen.add(ps)
            for ps in seen:
                pre_count[(ps, s)] += 1
        # how much of each candidate precursor sits just before storms (progress lines do not)
        near_storm: Counter = Counter()
        cand_p = sorted({ps for ps, _ in pre_count})
        storm_starts_by_job: dict[str, list[float]] = defaultdict(list)
        for s, j, t0, _ in starts:
            storm_starts_by_job[j].append(t0)
        for j in storm_starts_by_job:
            storm_starts_by_job[j].sort()
        for ps in cand_p:
            for i in self.by_sig[ps]:
                e = self.ev[i]
                st = storm_starts_by_job.get(e.job_id)
                if not st:
                    continue
                k = bisect.bisect_left(st, e.time - 2.0)
                if k < len(st) and st[k] - e.time <= S.precursor_window_s:
                    near_storm[ps] += 1
        reliable: set[tuple[int, int]] = set()
        for (ps, s), c in pre_count.items():
            frac_storms = c / bursts_per_sig[s]
            frac_near = near_storm[ps] / max(1, len(self.by_sig[ps]))
            known = self.sig_class(ps) in ("hardware", "network")
            if (c >= 2 or frac_storms >= 0.5 or (known and frac_near >= 0.8)) and frac_near >= 0.3:
                reliable.add((ps, s))
        new_h: dict[tuple, int] = {}  # (precursor signature, its switch) -> new storm hypothesis index
        stats: dict[tuple[int, int], dict] = {}  # (hyp, storm sig) -> bursts, events, lags, precursor sigs
        for (s, j, g), (_, _, t0, _) in zip(self.storm_bursts, starts):
            tk = self.job_times[j]
            lo = bisect.bisect_left(tk, t0 - S.precursor_window_s)
            hi = bisect.bisect_right(tk, t0 + 2.0)
            best = None
            for k in range(hi - 1, lo - 1, -1):
                i = self.by_job[j][k]
                ps = self.ev[i].signature_id
                if (ps, s) in reliable and i not in self.in_storm:
                    best = i
                    break
            if best is None:
                continue
            ps = self.ev[best].signature_id
            h = owner.get(best)
            if h is None:
                sw = self.topo.get(self.ev[best].host) if self.ev[best].host else None
                hk = (ps, sw)
                if hk not in new_h:
                    new_h[hk] = len(hyps)
                    hyps.append(_Hyp(self, [], storm_precursor=ps))
                h = new_h[hk]
                pre_ids = [i for i in self.by_sig[ps] if i not in owner and i not in self.in_storm
                           and (sw is None or self.topo.get(self.ev[i].host) == sw)]
                hyps[h].add_events(ps, pre_ids, None)
                for i in pre_ids:
                    owner[i] = h
            if not self.apart_allows(hyps[h].sigs | {s}):
                continue
            hyps[h].add_events(s, g, None)
            for i in g:
                owner[i] = h
            st = stats.setdefault((h, s), {"n": 0, "events": 0, "lags": [], "pre": Counter()})
            st["n"] += 1
            st["events"] += len(g)
            st["lags"].append(t0 - self.ev[best].time)
            st["pre"][ps] += 1
        for (h, s) in sorted(stats):
            st = stats[(h, s)]
            nb, ne, lags = st["n"], st["events"], sorted(st["lags"])
            med = lags[len(lags) // 2]
            pre = " or ".join(f"'{self.sig_title(x)}'" for x, _ in st["pre"].most_common(2))
            hyps[h].storm_lines.append(
                f"{nb} of {bursts_per_sig[s]} storms of '{self.sig_title(s)}' ({fmt_n(ne)} events from many ranks "
                f"within seconds) came {med:.0f} s (median) after {pre} in the same job: the storm is a consequence")
            hyps[h].storm_p.append(min(1.0, 0.5 ** (nb + 1)))

    # ---- human merges without evidence
    def human_only(self, hyps: list["_Hyp"], owner: dict[int, int]) -> None:
        for g in self.cons.together:
            present = [s for s in sorted(g) if self.by_sig.get(s)]
            if len(present) < 2:
                continue
            owners = {owner.get(i) for s in present for i in self.by_sig[s]} - {None}
            if owners:
                # fold unexplained events of the group into the largest hypothesis that holds any of it
                h = min(owners, key=lambda x: (-len(hyps[x].events), x))
            else:
                h = len(hyps)
                hyps.append(_Hyp(self, [], human=True))
            for s in present:
                ids = [i for i in self.by_sig[s] if i not in owner]
                if ids:
                    hyps[h].add_events(s, ids, None)
                    for i in ids:
                        owner[i] = h
            hyps[h].lines_extra.append("people merged " + ", ".join(f"'{self.sig_title(s)}'" for s in present)
                                       + " into one cause")


class _Hyp:
    def __init__(self, eng: _Engine, comps: list[Component], storm_precursor: int | None = None,
                 human: bool = False):
        self.eng = eng
        self.comps = comps
        self.events: list[int] = []
        self.sig_events: dict[int, list[int]] = defaultdict(list)
        self.sigs: set[int] = set()
        self.storm_precursor = storm_precursor
        self.human = human
        self.storm_lines: list[str] = []
        self.storm_p: list[float] = []
        self.lines_extra: list[str] = []
        for c in comps:
            self.add_events(c.sig, c.events, None)

    def add_events(self, s: int, ids: list[int], line: str | None) -> None:
        self.events.extend(ids)
        self.sig_events[s].extend(ids)
        self.sigs.add(s)
        if line:
            self.lines_extra.append(line)

    def proposal(self) -> Proposal:
        eng = self.eng
        ev = eng.ev
        comps = self.comps
        kinds = Counter(c.kind for c in comps)
        sig_order = sorted(self.sigs, key=lambda s: (-len(self.sig_events[s]), s))
        n_sym = len(self.sigs)
        scope: dict[str, list[str]] = {}
        for c in comps:
            for k, vs in c.scope.items():
                cur = scope.setdefault(k, [])
                for v in vs:
                    if v not in cur:
                        cur.append(v)
        for k in scope:
            scope[k] = sorted(scope[k], key=lambda x: (version_key(x.split("=", 1)[-1]) if k == "versions" else x, x))
        ps = [c.p for c in comps] + self.storm_p
        p = min(ps) if ps else 1.0
        if comps:
            kind = max(kinds, key=lambda k: (sum(len(c.events) for c in comps if c.kind == k), k))
        elif self.storm_precursor is not None:
            kind = "storm"
        else:
            kind = "human_merge"
        classes = Counter()
        for s in self.sigs:
            classes[eng.sig_class(s)] += len(self.sig_events[s])
        text_class = max((c for c in classes if c != "unknown"), key=lambda c: (classes[c], c), default="unknown")
        if kind == "localised_hardware":
            cause = "hardware"
            if text_class == "network" and "hardware" not in classes:
                cause = "network"
        elif kind == "switch":
            cause = "network"
        elif kind == "regression":
            cause = "software"  # a leak that ends in host OOM kills is still the code's
        elif kind == "data_step":
            cause = "data"
        else:
            cause = text_class
        agree = text_class in ("unknown", cause) or classes.get(cause, 0) > 0
        conf = confidence_from(p, agree=agree) if comps or self.storm_p else 0.5
        if kind == "storm" and not comps:
            # the precursor alone: what its text means, and how reliably it precedes the storms
            hosts = sorted({ev[i].host for i in self.sig_events[self.storm_precursor] if ev[i].host})
            sws = sorted({eng.topo[h] for h in hosts if h in eng.topo})
            if hosts:
                scope["hosts"] = hosts
            if sws and len(sws) <= 2:
                scope["switches"] = sws
        symptoms = ", ".join(eng.sig_title(s) for s in sig_order[:5]) + ("…" if n_sym > 5 else "")
        if kind == "regression":
            labels = Counter()
            for c in comps:
                if c.kind == "regression":
                    labels[c.label] += len(c.events)
            where = max(labels.items(), key=lambda kv: (kv[1], kv[0]))[0]
            title = f"Software regression {where}: {n_sym} symptom{'s' if n_sym > 1 else ''}" + (
                ", one cause" if n_sym > 1 else "")
        elif kind == "localised_hardware":
            h = scope.get("hosts", ["?"])[0]
            g = scope.get("gpus", [])
            what = "Network fault at host" if cause == "network" else "Faulty GPU hardware on"
            title = f"{what} {h}" + (f" ({g[0].split('/', 1)[1]})" if g else "") + f": {n_sym} symptom" + (
                "s" if n_sym > 1 else "")
        elif kind == "switch":
            title = f"Network fault under switch {', '.join(scope.get('switches', ['?']))}: {n_sym} symptom" + (
                "s" if n_sym > 1 else "")
        elif kind == "data_step":
            title = (f"Bad training data at step {', '.join(scope.get('steps', ['?']))} of "
                     f"{', '.join(scope.get('jobs', ['?']))}: fails there after every restart")
        elif kind == "storm":
            others = [eng.sig_title(x) for x in sig_order if x != self.storm_precursor]
            title = (f"{eng.sig_title(self.storm_precursor)}, then storms of {', '.join(others[:3])}"
                     + (f" ({text_class})" if text_class != "unknown" else ""))
        else:
            title = f"People's merge: {symptoms}"
        lines: list[str] = []
        for c in comps:
            lines.extend(c.evidence)
        if kind == "regression" and n_sym > 1:
            lines.insert(0, f"{n_sym} different symptoms share one onset and no location: " + symptoms)
            jobs_of = {s: {ev[i].job_id for i in self.sig_events[s]} for s in self.sigs}
            all_jobs = set().union(*jobs_of.values())
            multi = sum(1 for j in all_jobs if sum(1 for s in self.sigs if j in jobs_of[s]) >= min(2, n_sym))
            lines.insert(1, f"the same jobs show them: {multi} of {len(all_jobs)} affected jobs logged at least two "
                            f"of the {n_sym} symptoms")
        lines.extend(self.storm_lines)
        lines.extend(self.lines_extra)
        if classes:
            named = [f"{eng.sig_title(s)} means {eng.sig_class(s)}" for s in sig_order if eng.sig_class(s) != "unknown"]
            if named and kind in ("localised_hardware", "switch", "storm"):
                lines.append("known meaning: " + "; ".join(named[:4]))
        if not agree:
            lines.append(f"note: the texts themselves point to {text_class}, the pattern to {cause}")
        jobs = sorted({ev[i].job_id for i in self.events})
        if kind in ("data_step",) and "jobs" not in scope:
            scope["jobs"] = jobs
        key = ""
        if comps:
            k0 = min((c.key for c in comps), key=lambda k: (str(k[0]), str(k)))
            key = ":".join(str(x) if not isinstance(x, tuple) else "/".join(x) for x in k0)
        elif self.storm_precursor is not None:
            key = f"storm:{self.storm_precursor}"
        else:
            key = "human:" + "/".join(str(s) for s in sorted(self.sigs))
        return Proposal(
            title=title, cause_class=cause, scope=scope, confidence=conf, evidence=lines,
            signature_ids=sorted(self.sigs), event_ids=sorted(ev[i].id for i in self.events), kind=kind, key=key,
        )


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
        return _Engine(events, signatures, topology, constraints, settings, exposure).run()
    finally:
        if gc_was_on:
            gc.enable()
