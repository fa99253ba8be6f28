"""The shared event index every rule reads: records sorted by time, per-signature and per-job
indexes, occurrences, exposure, and the wording helpers of evidence lines."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from .lineage import run_key, sequential_runs
from .model import EventRecord, SignatureInfo
from .names import candidate_groups, canonical_host, expand_nodelist
from .settings import Settings
from .stats import strength


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


def near(sorted_times: list[float], t: float, w: float) -> bool:
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
    count: int = 0  # a host incident's: how many failures its events are (incidents.py)


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


def _host_spellings(records: Sequence[EventRecord], limit: int) -> dict[str, str | None]:
    """Each distinct host field -> the one spelling analysis uses: FQDN and short name agree; a
    SLURM node list naming several hosts is a job-wide line, not any one host's (None)."""
    out: dict[str, str | None] = {}
    for e in records:
        h = e.host
        if h is None or h in out:
            continue
        if "[" in h or "," in h:
            try:
                hosts = expand_nodelist(h, limit=limit)
            except ValueError:
                hosts = []
            out[h] = canonical_host(hosts[0]) if len(hosts) == 1 else None
        else:
            out[h] = canonical_host(h)
    return out


def normalise(records: Sequence[EventRecord], spell: Mapping[str, str | None]) -> list[EventRecord]:
    """Records with the host under its one spelling (a new record only where it changes)."""
    out = []
    for e in records:
        if e.host is not None and spell[e.host] != e.host:
            e = replace(e, host=spell[e.host])
        out.append(e)
    return out


def topology_from_names(hosts, *, min_size: int) -> dict[str, str]:
    """host -> the group its name suggests (no topology file): one family for the whole fleet,
    the likeliest to be a leaf switch: /24 subnets, else rack tokens, else aligned numeric blocks
    (16, else 8, else 32 names). Each group is then tested like a switch, corrected for their number."""
    groups = candidate_groups(sorted(hosts))
    fams: dict[str, dict[str, frozenset[str]]] = {}
    for label, members in groups.items():
        if len(members) < min_size:
            continue
        kind = label.split(" ", 1)[0]
        if kind == "range":
            kind = f"range{len(members)}"
        fams.setdefault(kind, {})[label] = members
    for kind in ("subnet", "rack", "range16", "range8", "range32"):
        fam = fams.get(kind)
        if fam and len(fam) >= 2:
            out: dict[str, str] = {}
            for label in sorted(fam):
                for h in fam[label]:
                    out.setdefault(h, label)
            return out
    return {}


class Index:
    def __init__(self, events, signatures, topology, constraints, settings: Settings, exposure=()):
        spell = _host_spellings(list(events) + list(exposure), settings.nodelist_limit)
        self.ev: list[EventRecord] = sorted(normalise(events, spell), key=lambda e: (e.time, e.id))
        exposure = normalise(exposure, spell)
        self.sigs: Mapping[int, SignatureInfo] = signatures
        self.topo: Mapping[str, str] = {canonical_host(h): sw for h, sw in (topology or {}).items()}
        self.topo_from_names = False
        if not self.topo:
            named = {spell[h] for h in spell if spell[h] is not None}
            self.topo = topology_from_names(named, min_size=settings.name_group_min_hosts)
            self.topo_from_names = bool(self.topo)
        # how many stored events each record stands for (occurrence aggregates): every count weighs by it
        self.w: list[int] = [max(1, e.count) for e in self.ev]
        # the run each job is an attempt of (job-id suffixes, or the reporter's run/attempt)
        self.run_of: dict[str, str] = {}
        for e in self.ev:
            if e.job_id not in self.run_of or (e.run and self.run_of[e.job_id] == e.job_id):
                self.run_of[e.job_id] = run_key(e.job_id, e.run)
        # attempts named by a random tail (a pod per attempt) or sharing the launcher's job name
        # (a SLURM resubmission) that ran one after another: one run
        # (its training span: the lines with a step; a health check hours after a failure is no
        # part of the attempt's run time)
        spans: dict[str, tuple[float, float]] = {}
        stepped: dict[str, tuple[float, float]] = {}
        for e in self.ev:
            if self.run_of[e.job_id] == e.job_id:
                d = stepped if e.step is not None else spans
                t0, t1 = d.get(e.job_id, (e.time, e.time))
                d[e.job_id] = (min(t0, e.time), max(t1, e.time))
        spans.update(stepped)
        names = {e.job_id: e.job_name for e in self.ev if e.job_name and self.run_of[e.job_id] == e.job_id}
        self.run_of.update(sequential_runs(spans, names=names))
        self.cons = constraints
        self.S = settings
        # Progress reports widen what each job is known to have run (hosts, versions, steps);
        # they are not failures, so only the exposure sees them.
        self.expo = Exposure(self.ev + sorted(exposure, key=lambda e: (e.time, e.id)) if exposure else self.ev)
        # exposure per run and host: the attempts of a run added up
        self.run_host: dict[str, dict[str, float]] = defaultdict(dict)
        for j, hosts in self.expo.job_host.items():
            rh = self.run_host[self.run_of.get(j) or run_key(j)]
            for h, x in hosts.items():
                rh[h] = rh.get(h, 0.0) + x
        self.by_sig: dict[int, list[int]] = defaultdict(list)
        self.by_job: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(self.ev):
            self.by_sig[e.signature_id].append(i)
            self.by_job[e.job_id].append(i)
        self.job_times = {j: [self.ev[i].time for i in idx] for j, idx in self.by_job.items()}
        self.job_span: dict[str, tuple[float, float]] = {j: (t[0], t[-1]) for j, t in self.job_times.items()}
        self.jobs_of_cluster: dict[str, set[str]] = defaultdict(set)
        self.job_cluster: dict[str, str] = {}
        for e in self.ev:
            self.jobs_of_cluster[e.cluster or ""].add(e.job_id)
            if e.cluster:
                self.job_cluster.setdefault(e.job_id, e.cluster)
        self.by_run: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(self.ev):
            self.by_run[self.run_of[e.job_id]].append(i)
        self.run_times = {r: [self.ev[i].time for i in idx] for r, idx in self.by_run.items()}
        self.jobs_of_run: dict[str, set[str]] = defaultdict(set)  # the attempts of each run
        for j, r in self.run_of.items():
            self.jobs_of_run[r].add(j)
        self.occ: list[int] = [0] * len(self.ev)  # occurrence (burst) id per event
        self.storm_bursts: list[tuple[int, str, list[int]]] = []  # (sig, job, event indices)
        self.in_storm: set[int] = set()
        self.components: list[Component] = []
        self.taken: set[int] = set()
        self.routine: set[int] = set()  # signatures of routine benign noise (coverage.routine_signatures)
        self.cache: dict = {}  # what a rule derives once per analysis (e.g. gpus.py's PCI ties)

    def sig_title(self, s: int) -> str:
        si = self.sigs.get(s)
        return si.title if si else f"signature {s}"

    def sig_mentions(self, s: int, markers) -> bool:
        """Whether signature ``s``'s category or title holds one of ``markers`` (lower-case words
        of a ``Settings`` list): how a rule knows a text by its meaning."""
        si = self.sigs.get(s)
        if si is None:
            return False
        text = f"{si.category} {si.title}".lower()
        return any(m in text for m in markers)

    def sig_class(self, s: int) -> str:
        si = self.sigs.get(s)
        return si.cause_class if si else "unknown"

    def sig_category(self, s: int) -> str:
        si = self.sigs.get(s)
        return si.category if si else ""

    def occurrence_firsts(self, idx) -> dict[int, int]:
        """Occurrence id -> the first of the records ``idx`` in it (``idx`` in time order): the
        unit rules count in."""
        occ = self.occ
        firsts: dict[int, int] = {}
        for i in idx:
            firsts.setdefault(occ[i], i)
        return firsts

    def just_before_storm(self, i: int) -> bool:
        """Whether event ``i`` comes within the watchdog's window before a storm of its job starts
        (or up to 2 s after: clocks of one job differ), the place of a storm's precursor rather than
        of a symptom. Storm starts are gathered once per analysis (``storm_bursts`` is final by the
        time rules ask)."""
        starts = self.cache.get("storm_starts")
        if starts is None:
            by_job: dict[str, list[float]] = defaultdict(list)
            for _s, j, g in self.storm_bursts:
                by_job[j].append(self.ev[g[0]].time)
            starts = {j: sorted(ts) for j, ts in by_job.items()}
            self.cache["storm_starts"] = starts
        st = starts.get(self.ev[i].job_id)
        if not st:
            return False
        t = self.ev[i].time
        k = bisect.bisect_left(st, t - 2.0)
        S = self.S
        return k < len(st) and st[k] - t <= S.watchdog_timeout_s * S.watchdog_margin + S.watchdog_slack_s

    def lines_before(self, i: int) -> list[int]:
        """Other texts' lines (not routine noise) in the same job up to ``episode_gap_s`` before
        event ``i``: the failure ``i`` follows, if any."""
        e = self.ev[i]
        tk = self.job_times[e.job_id]
        idx = self.by_job[e.job_id]
        k = bisect.bisect_left(tk, e.time - self.S.episode_gap_s)
        out: list[int] = []
        for q in range(k, min(len(idx), k + 200)):
            j = idx[q]
            ej = self.ev[j]
            if ej.time > e.time or j == i:
                break
            if ej.signature_id != e.signature_id and ej.signature_id not in self.routine:
                out.append(j)
        return out

    def texts_before(self, i: int) -> set[int]:
        """Signatures of ``lines_before(i)``."""
        return {self.ev[j].signature_id for j in self.lines_before(i)}

    def follows_other(self, i: int) -> bool:
        """Whether event ``i`` follows another text's failure (``texts_before``: the launcher's
        "child failed", a bad GPU's CUDA error after its Xid) rather than opening one of its own."""
        return bool(self.texts_before(i))

    def weight(self, idx) -> int:
        """Stored events the records ``idx`` stand for."""
        w = self.w
        return sum(w[i] for i in idx)

    def add(self, c: Component) -> None:
        self.components.append(c)
        self.taken.update(c.events)

    def apart_allows(self, sigs: set[int]) -> bool:
        return all(len(sigs & g) < 2 for g in self.cons.apart)
