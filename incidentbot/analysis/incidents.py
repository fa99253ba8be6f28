"""Rule 6b, incidents: one job's failure is several lines within seconds, and one cause: the host
(and GPU) whose own hardware or network line came first. One concept, the *host incident*
(kind ``host_incident``), found in two passes of this module:

1. ``find_anchored`` (component stage, before pooled onsets and merging): an *anchor* is a line of
   hardware or network meaning, any Xid, or a node going down, *followed* by another text of its
   job on that host; the incident is the job's lines chained from it (the kernel's line under the
   FQDN with a PCI bus id tied to the GPU index, the app's error, the peers' errors, the launcher's
   lines after the storm). One hypothesis per host x GPU (NIC, host), with a chance test: the host
   where a job's failure begins is 1/n of its hosts, multiplied over that host's incidents,
   corrected for the number of hosts. A node failure naming no one host (a SLURM node list) is
   kind ``node_failure``.
2. ``find_incidents`` (hypothesis stage, after merging): what is left, as *episodes* (a job's lines
   with gaps of at most ``episode_gap_s``, at most ``episode_max_span_s`` in all). An episode of at
   least two texts whose earliest hardware (else network) line sits on one host, or a lone
   hardware line after which the job stopped, joins that host's incident (from pass 1, by GPU
   where it names one) or begins one. An episode with no such line: its other lines follow its
   first line's text (``follow``), so coverage puts "the child process failed" with its error.

In both, *background* texts (``background_texts``: logged whether or not anything fails, most of
their lines with no other failing text of their job near them) neither begin nor join an incident
(pass 2: they lead only on a host that already has one, e.g. a GPU's later health check), and a
line logged on other hosts at the same moment (``_simultaneous``) is no one host's fault (a switch,
a power event). Storms are not part of incidents: ``precedence.py`` gives a storm to the incident of
the host that failed first in its job (within the watchdog's window), and ``companions`` brings the
storm's own abort lines with it."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .coverage import is_benign_text, is_job_level_text
from .gpus import device_of, dominant_device
from .hypothesis import Hyp, give
from .index import Component, Index, fmt_p


def background_texts(ix: Index) -> set[int]:
    """Hardware or network texts (not benign-sounding) logged whether or not anything fails: most of
    their lines have no other such line of their job within ``incident_gap_s`` (a kernel warning
    logged all day, a health check's known false positive). They neither begin nor join an incident
    (``find_anchored``) nor lead an episode (``find_incidents``) on a host with no incident yet.
    Memoised on the index."""
    got = ix.cache.get("incident_background")
    if got is not None:
        return got
    S, ev = ix.S, ix.ev
    firm = {
        s for s in ix.by_sig if not is_benign_text(ix, s) or ix.sig_class(s) in S.incident_classes or _says_down(ix, s)
    }
    out: set[int] = set()
    for s in ix.by_sig:
        if s not in firm or ix.sig_class(s) not in S.incident_classes:
            continue
        near = 0
        for i in ix.by_sig[s]:
            e = ev[i]
            tk, idx = ix.job_times[e.job_id], ix.by_job[e.job_id]
            lo = bisect.bisect_left(tk, e.time - S.incident_gap_s)
            hi = bisect.bisect_right(tk, e.time + S.incident_gap_s)
            near += any(
                (s2 := ev[idx[q]].signature_id) != s and s2 in firm and idx[q] not in ix.in_storm
                for q in range(lo, min(hi, lo + 200))
            )
        if len(ix.by_sig[s]) >= S.incident_background_min and near < S.incident_follow_frac * len(ix.by_sig[s]):
            out.add(s)
    ix.cache["incident_background"] = out
    return out


def _simultaneous(ix: Index, i: int) -> bool:
    """The same text at the same moment (``incident_simul_s``) on another host: a shared component
    (a switch, a power event), no one host's fault."""
    e = ix.ev[i]
    times = ix.cache.get(("sig_times", e.signature_id))
    if times is None:
        times = ix.cache[("sig_times", e.signature_id)] = [ix.ev[k].time for k in ix.by_sig[e.signature_id]]
    lo = bisect.bisect_left(times, e.time - ix.S.incident_simul_s)
    hi = bisect.bisect_right(times, e.time + ix.S.incident_simul_s)
    return any(ix.ev[ix.by_sig[e.signature_id][q]].host not in (e.host, None) for q in range(lo, min(hi, lo + 50)))


def episodes(ix: Index) -> list[list[int]]:
    """The episodes of every job: runs of non-storm lines with short gaps (a scheduler's line
    about the whole job is no part of one)."""
    S = ix.S
    skip_sig = {s for s in ix.by_sig if is_job_level_text(ix, s)}
    out: list[list[int]] = []
    ev, storm = ix.ev, ix.in_storm
    for j in sorted(ix.by_job):
        cur: list[int] = []
        t_first = t_last = 0.0
        for i in ix.by_job[j]:
            if i in storm or ev[i].signature_id in skip_sig:
                continue
            t = ev[i].time
            if cur and (t - t_last > S.episode_gap_s or t - t_first > S.episode_max_span_s):
                out.append(cur)
                cur = []
            if not cur:
                t_first = t
            cur.append(i)
            t_last = t
        if cur:
            out.append(cur)
    return out


def leading_texts(ix: Index, eps: list[list[int]]) -> set[int]:
    """Texts (not benign-sounding) whose lines come with another such text at least
    ``incident_lead_share`` of the time; the rest is background (a known false positive, a
    driver's routine message, progress lines), however it sounds."""
    w = ix.w
    with_others: dict[int, int] = defaultdict(int)
    total: dict[int, int] = defaultdict(int)
    firm = {s for s in ix.by_sig if not is_benign_text(ix, s)}
    for ep in eps:
        sigs = {ix.ev[i].signature_id for i in ep} & firm
        for i in ep:
            s = ix.ev[i].signature_id
            if s not in firm:
                continue
            total[s] += w[i]
            if len(sigs) >= 2:
                with_others[s] += w[i]
    return {s for s, n in total.items() if with_others[s] >= ix.S.incident_lead_share * n}


def joining_texts(ix: Index, eps: list[list[int]], leads: set[int]) -> set[int]:
    """Benign-sounding texts whose lines come with a failure's lines at least
    ``incident_lead_share`` of the time (peers' connect warnings after a host went down); progress
    lines, slow checkpoints and INFO chatter come alone or with each other and do not."""
    w = ix.w
    with_fail: dict[int, int] = defaultdict(int)
    total: dict[int, int] = defaultdict(int)
    for ep in eps:
        failing = any(ix.ev[i].signature_id in leads for i in ep)
        for i in ep:
            s = ix.ev[i].signature_id
            if s in leads or not is_benign_text(ix, s):
                continue
            total[s] += w[i]
            if failing:
                with_fail[s] += w[i]
    return {s for s, n in total.items() if with_fail[s] >= ix.S.incident_lead_share * n}


def interrupted(ix: Index, ep: list[int], *, restart: bool = False) -> bool:
    """The job stopped or restarted right after the episode: its next steps (a minute on) do not
    go past where it was, or it logged no step again (with ``restart``: and its run went on in a
    later attempt). Lines the job carried on after were no failure of it. (A storm after a lone
    line is for ``precedence.py`` to weigh.)"""
    S = ix.S
    e_last = ix.ev[ep[-1]]
    j, t_end = e_last.job_id, e_last.time
    step = max((st for i in ep if (st := ix.ev[i].step) is not None), default=None)
    tk = ix.job_times[j]
    idx = ix.by_job[j]
    if step is None:
        k0 = bisect.bisect_left(tk, ix.ev[ep[0]].time)
        step = next(
            (ix.ev[idx[q]].step for q in range(k0 - 1, max(-1, k0 - 500), -1) if ix.ev[idx[q]].step is not None), None
        )
    lo = bisect.bisect_right(tk, t_end + S.episode_gap_s)
    later: list[int] = []
    for q in range(lo, min(len(idx), lo + 500)):
        if idx[q] in ix.in_storm:
            continue
        sq = ix.ev[idx[q]].step
        if sq is not None:
            later.append(sq)
            if len(later) == 3:
                break
    if step is None:
        return False  # no training seen before it (an idle host's kernel line): nothing to interrupt
    if not later:
        if not restart:
            return True
        # the job ended there: a failure when its run went on in a later attempt (a job that simply
        # finished ends after its last line too)
        run = ix.run_of.get(j, j)
        return any(jj != j and ix.job_span[jj][0] > t_end for jj in ix.jobs_of_run.get(run, ()))
    return sum(1 for x in later if x > step) <= 0.5 * len(later)


@dataclass
class Incidents:
    by_host: dict[str, int] = field(default_factory=dict)  # host -> its incident hypothesis
    follow: dict[int, int] = field(default_factory=dict)  # leftover line -> the text it follows (coverage)
    first_of: dict[int, int] = field(default_factory=dict)  # line of an episode with no host -> its first line
    members: dict[int, list[int]] = field(default_factory=dict)  # that first line -> the episode's leftover lines
    leads: set[int] = field(default_factory=set)  # texts that come with others (not background)
    found: set[int] = field(default_factory=set)  # hypotheses of ``find_anchored``'s incidents (per host x GPU)
    by_gpu: dict[tuple[str, ...], int] = field(default_factory=dict)  # (host, GPU) -> its incident hypothesis

    @property
    def hyps(self) -> frozenset[int]:
        return frozenset(self.by_host.values()) | self.found

    def incident(self, ix: Index, hyps: list[Hyp], lead: int) -> int:
        """The incident of the host a failure's first line (``lead``) sits on, by device as in
        ``find_anchored``: a failure of another GPU of a host with an incident, or of its NIC (a
        network line, an mlx5 event), or of the host itself (no device, not a GPU's text) is a
        fault of its own, with its own ticket; a GPU's line naming no device joins the host's."""
        e = ix.ev[lead]
        host, cls, s = e.host or "?", ix.sig_class(e.signature_id), e.signature_id
        gpu = device_of(ix, lead)
        if gpu is None and ix.sig_category(s) in ix.S.gpu_categories:
            dev = None
        elif gpu is None:
            dev = "nic" if cls == "network" or ix.sig_category(s) in ix.S.nic_categories else "host"
        else:
            dev = gpu
        h = self.by_host.get(host)
        if dev is not None:
            got = self.by_gpu.get((host, dev))
            if got is not None:
                return got
            if h is not None and not any(hh == host for hh, _d in self.by_gpu):
                self.by_gpu[(host, dev)] = h  # the host's incident names no device yet: it is this one's
                return h
            if h is not None or gpu is not None:
                h = self.by_gpu[(host, dev)] = len(hyps)
                hyps.append(Hyp(ix, [], incident=(host, cls), incident_device=dev))
                self.by_host.setdefault(host, h)
                return h
        if h is None:
            h = self.by_host[host] = len(hyps)
            hyps.append(Hyp(ix, [], incident=(host, cls)))
            if dev is not None:
                self.by_gpu[(host, dev)] = h
        return h

    def take_episode(self, ix: Index, hyps: list[Hyp], owner: dict[int, int], first: int) -> int:
        """The episode of ``first`` (no host line in it) becomes the incident of the host that
        failed first, as when a storm followed it: the collective hung on that rank's error."""
        h = self.incident(ix, hyps, first)
        _join(ix, hyps, owner, h, [i for i in self.members.pop(first, [first]) if i not in owner])
        return h

    def precursor(self, ix: Index, owner: dict[int, int], i: int) -> bool:
        """A line a storm may be attributed to without further proof: a host incident's, or an
        unexplained line of a text that comes with failures (the rank that failed first)."""
        if owner.get(i) in self.hyps:
            return True
        e = ix.ev[i]
        return (
            i not in owner
            and e.host is not None
            and e.signature_id in self.leads
            and not is_benign_text(ix, e.signature_id)
        )


def find_incidents(ix: Index, hyps: list[Hyp], owner: dict[int, int]) -> Incidents:
    """Pass 2 (see the module's text): episodes join pass 1's incidents or make new host incidents
    (new hypotheses, owned events); for episodes without a host line, which leftover line follows
    which text."""
    eps = episodes(ix)
    leads = leading_texts(ix, eps)
    ev = ix.ev
    out = Incidents()
    # the incidents ``find_anchored`` found: an episode led from their host joins them, and a
    # storm after them is theirs
    for hi, hyp in enumerate(hyps):
        if hyp.incident is not None:
            out.found.add(hi)
            out.by_host.setdefault(hyp.incident[0], hi)
            gpus = [g for c in hyp.comps for g in c.scope.get("gpus", [])]
            for g in gpus:
                out.by_gpu.setdefault(tuple(g.split("/", 1)), hi)
            if not gpus:  # the host's own or its NIC's (find_anchored: a network line leads a NIC's)
                out.by_gpu.setdefault((hyp.incident[0], "nic" if hyp.incident[1] == "network" else "host"), hi)
    out.leads = leads
    joins = joining_texts(ix, eps, leads)
    background = background_texts(ix)
    for ep in eps:
        benign = {i for i in ep if is_benign_text(ix, ev[i].signature_id)}
        core = [i for i in ep if i not in benign and ev[i].signature_id in leads]
        n_core = len({ev[i].signature_id for i in core})
        # the host line: the first of hardware (else network) meaning, not benign-sounding
        lead = None
        for cls in ix.S.incident_classes:
            lead = next(
                (
                    i
                    for i in ep
                    if i not in benign and ev[i].host is not None and ix.sig_class(ev[i].signature_id) == cls
                ),
                None,
            )
            if lead is not None:
                break
        if lead is not None and _simultaneous(ix, lead):
            lead = None  # the same line on other hosts at once: a switch or a power event, left to the others
        if lead is not None and ev[lead].signature_id in background and ev[lead].host not in out.by_host:
            # a text logged whether or not anything fails points at no host by itself; on a host with an
            # incident (a GPU's later health check) it is that incident's line
            lead = None
        if lead is not None and (lead not in core or n_core < 2):
            # one host line alone: a failure of that host when the job stopped right after it and
            # the line means hardware; a lone network line may be a link or a switch, which
            # ``precedence.py`` weighs over all the storms it precedes
            if ix.sig_class(ev[lead].signature_id) != "hardware" or not interrupted(ix, ep):
                lead = None
        if lead is None:
            if n_core < 2:
                continue
            first = core[0]
            left = [i for i in core if i not in owner]
            if first in owner:
                if ix.S.episode_join_owned and left:
                    _join(ix, hyps, owner, owner[first], left)
                continue
            for i in left:
                out.follow[i] = ev[first].signature_id
            if ev[first].host is not None:
                out.members[first] = left
                for i in left:
                    out.first_of[i] = first
            continue
        # the failure's other lines join it: its peers' errors and warnings, wherever logged
        left = [
            i
            for i in ep
            if i not in owner and (ev[i].signature_id in leads or ev[i].signature_id in joins or i == lead)
        ]
        if not left:
            continue
        h = owner.get(lead)
        if h is None:
            h = out.incident(ix, hyps, lead)
        elif not ix.S.episode_join_owned and not hyps[h].incident:
            continue
        _join(ix, hyps, owner, h, left)
    return out


def _join(ix: Index, hyps: list[Hyp], owner: dict[int, int], h: int, ids: list[int]) -> None:
    by_sig: dict[int, list[int]] = defaultdict(list)
    for i in ids:
        by_sig[ix.ev[i].signature_id].append(i)
    for s, ii in sorted(by_sig.items()):
        if not ix.apart_allows(hyps[h].sigs | {s}):
            continue
        give(hyps, owner, h, s, ii, None)
    hyps[h].episodes += 1


def companions(ix: Index, j: str, g: list[int], owner: dict[int, int]) -> list[int]:
    """Leftover lines of job j during a storm (and ``storm_companion_s`` around it): each rank's
    abort after the watchdog fired belongs with the storm."""
    S = ix.S
    tk = ix.job_times[j]
    t0, t1 = ix.ev[g[0]].time, ix.ev[g[-1]].time
    lo = bisect.bisect_left(tk, t0 - S.storm_companion_s)
    hi = bisect.bisect_right(tk, t1 + S.storm_companion_s)
    out = []
    for k in range(lo, hi):
        i = ix.by_job[j][k]
        if i in owner or i in ix.in_storm:
            continue
        s = ix.ev[i].signature_id
        if is_benign_text(ix, s) or is_job_level_text(ix, s):
            continue
        out.append(i)
    return out


def _says_down(ix: Index, s: int) -> bool:
    return ix.sig_mentions(s, ix.S.host_down_markers)


def _node_failure(ix: Index, take: list[int], a: int) -> None:
    """An incident whose first line names no one host (a node list: SLURM's "node failure" for the
    job): one hypothesis of its own, the job's failure explained by a node going down."""
    ev = ix.ev
    j = ev[a].job_id
    hosts = sorted({h for i in take if (h := ev[i].host) is not None})
    n_hosts = max(1, len(ix.expo.job_hosts.get(j, ())))
    line = (
        f"'{ix.sig_title(ev[a].signature_id)}' for job {j} (no one host named), then {len(take) - 1} lines of "
        f"its peers within {ix.S.incident_gap_s:.0f} s of each other on {len(hosts)} of its {n_hosts} hosts: "
        f"one node of the job went down and the others lost it"
    )
    by_sig: dict[int, list[int]] = defaultdict(list)
    for i in take:
        by_sig[ev[i].signature_id].append(i)
    cls = ix.sig_class(ev[a].signature_id)
    for n, s in enumerate(sorted(by_sig, key=lambda s: (s != ev[a].signature_id, -len(by_sig[s]), s))):
        ix.add(
            Component(
                s,
                "node_failure",
                ("node_failure", j, str(ev[a].id)),
                by_sig[s],
                0.5,  # no test: the scheduler's own word that a node failed, and the job's failure after it
                [line] if n == 0 else [],
                {"jobs": [j]},
                cause_class=cls if cls != "unknown" else "infrastructure",
            )
        )


def find_anchored(ix: Index) -> None:
    """Pass 1 (see the module's text): anchored incidents as components, one per host x device and
    text, events taken. ``incident_gap_s`` chains the lines (a storm of the job within the watchdog
    window bridges the chain; the storm itself is left to ``precedence.py``), ``incident_pre_s``
    admits the host's own lines just before the anchor (clocks of two logs), and a text followed
    less often than ``incident_follow_frac`` of its occurrences anchors nothing."""
    S = ix.S
    ev = ix.ev
    if not ev:
        return
    free = [i not in ix.taken and i not in ix.in_storm for i in range(len(ev))]
    # benign words (a WARN level) on a text that means network or hardware do not make it noise
    # here: "NCCL WARN ... Connect failed" is how peers say a node is gone
    benign = {s: is_benign_text(ix, s) and ix.sig_class(s) not in S.incident_classes for s in ix.by_sig}
    # a text saying a node went down (Kubernetes NodeNotReady, SLURM's node failure) begins an
    # incident whatever its words' class; the node logs nothing itself, its peers do
    down = {s for s in ix.by_sig if _says_down(ix, s)}
    for s in down:
        benign[s] = False
    anchor_sig = {
        s
        for s in ix.by_sig
        if (not benign[s] and (ix.sig_class(s) in S.incident_classes or ix.sig_category(s) in S.incident_categories))
        or s in down
    }
    if not anchor_sig:
        return
    # per job and host: the job's events on that host, by time (for "followed on the same host")
    jh_times: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    jh_idx: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for i, e in enumerate(ev):
        if e.host is not None and not benign[e.signature_id]:
            jh_times[(e.job_id, e.host)].append(e.time)
            jh_idx[(e.job_id, e.host)].append(i)

    def followed(i: int) -> bool:
        e = ev[i]
        k = (e.job_id, e.host)
        ts, ii = jh_times[k], jh_idx[k]
        lo = bisect.bisect_left(ts, e.time - S.incident_pre_s)
        hi = bisect.bisect_right(ts, e.time + S.incident_gap_s)
        return any(ev[ii[q]].signature_id != e.signature_id for q in range(lo, min(hi, lo + 200)))

    def followed_in_job(i: int) -> bool:
        """Another non-benign text of the job follows (on any host): for a node gone down, or a
        job-level line naming the job's node list."""
        e = ev[i]
        tk, idx = ix.job_times[e.job_id], ix.by_job[e.job_id]
        lo = bisect.bisect_right(tk, e.time)
        hi = bisect.bisect_right(tk, e.time + S.incident_gap_s)
        return any(
            ev[idx[q]].signature_id != e.signature_id and not benign[ev[idx[q]].signature_id]
            for q in range(lo, min(hi, lo + 200))
        )

    cand: dict[int, list[int]] = defaultdict(list)
    for s in sorted(anchor_sig):
        occ_seen: dict[int, bool] = {}
        for i in ix.by_sig[s]:
            o = ix.occ[i]
            f = followed_in_job(i) if (ev[i].host is None or s in down) else followed(i)
            occ_seen[o] = occ_seen.get(o, False) or f
            if f and free[i]:
                cand[s].append(i)
        if occ_seen and sum(occ_seen.values()) < S.incident_follow_frac * len(occ_seen):
            cand.pop(s, None)  # background: logged whether or not anything fails
    background = background_texts(ix)
    anchors = sorted((i for lst in cand.values() for i in lst), key=lambda i: (ev[i].time, ev[i].id))
    if not anchors:
        return
    storm_starts: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for s, j, g in ix.storm_bursts:
        storm_starts[j].append((ev[g[0]].time, ev[g[-1]].time, s))
    for j in storm_starts:
        storm_starts[j].sort()
    from .precedence import watchdog_window  # the watchdog's own timeout, read from its text

    host_jobs: dict[str, set[str]] = defaultdict(set)
    for j, hh in jh_idx:
        if hh is not None:
            host_jobs[hh].add(j)
    incidents: list[tuple[str, str, list[int], int, str]] = []  # (host, device, events, anchor, job)
    used: set[int] = set()
    for a in anchors:
        if a in used or not free[a]:
            continue
        e = ev[a]
        h, t = e.host, e.time
        if h is not None and _simultaneous(ix, a):
            continue  # the same text at the same moment on other hosts: a shared component, not this host
        # the jobs this incident interrupted: the anchor's, and those on the host logging right after it
        jobs = {e.job_id}
        for j in host_jobs.get(h, set()) if h is not None else ():
            ts = jh_times[(j, h)]
            k = bisect.bisect_left(ts, t - S.incident_pre_s)
            if k < len(ts) and ts[k] <= t + S.incident_gap_s:
                jobs.add(j)
        host_until = t + watchdog_window(ix, -1)
        take: list[int] = []
        for j in sorted(jobs):
            idx = ix.by_job[j]
            tk = ix.job_times[j]
            # storms of the job within the watchdog window after the anchor: the chain runs through them
            bridges = [
                (t0, t1) for t0, t1, s in storm_starts.get(j, []) if t <= t0 + 2.0 and t0 <= t + watchdog_window(ix, s)
            ]
            last = t
            for q in range(bisect.bisect_left(tk, t - S.incident_pre_s), len(idx)):
                i = idx[q]
                ei = ev[i]
                while bridges and bridges[0][0] <= ei.time:
                    last = max(last, bridges.pop(0)[1])
                on_host = h is not None and ei.host == h
                if ei.time > last + S.incident_gap_s:
                    if not bridges and not (on_host and ei.time <= host_until):
                        break
                    if not on_host or ei.time > host_until:
                        continue  # waiting for the storm: what comes between is not the incident's
                if not free[i] or benign[ei.signature_id] or ei.signature_id in background or i in used:
                    # (a background text neither begins nor joins an incident)
                    continue
                if ei.time < t and not on_host:
                    continue  # before the anchor only the host's own lines (clock skew between logs)
                take.append(i)
                if ei.time <= last + S.incident_gap_s:
                    last = max(last, ei.time)
        if a not in take:
            take.append(a)
        used.update(take)
        dev = device_of(ix, a)
        if dev is None:
            devs = Counter(device_of(ix, i) for i in take if ev[i].host == h)
            devs.pop(None, None)
            if len(devs) == 1:
                dev = next(iter(devs))
        if dev is not None:
            kind = "gpu"
        elif ix.sig_class(e.signature_id) == "network" or ix.sig_category(e.signature_id) in S.nic_categories:
            kind = "nic"  # a NIC's own event (mlx5: hardware by its words) is no GPU's
        else:
            kind = "host"
        if h is None:
            _node_failure(ix, take, a)
            continue
        incidents.append((h, dev if dev is not None else kind, take, a, e.job_id))
    if not incidents:
        return
    # one hypothesis per host and device; an incident whose device is unknown joins the host's
    # only known device
    devs_of: dict[str, set[str]] = defaultdict(set)
    for h, d, *_ in incidents:
        if d not in ("host", "nic"):
            devs_of[h].add(d)
    groups: dict[tuple[str, str], list[tuple[list[int], int, str]]] = defaultdict(list)
    for h, d, take, a, j in incidents:
        if d == "host" and len(devs_of[h]) == 1 and ix.sig_category(ev[a].signature_id) in S.gpu_categories:
            d = next(iter(devs_of[h]))  # a GPU's line naming no device: the host's only blamed GPU
        groups[(h, d)].append((take, a, j))
    n_hosts = max(2, len({e.host for e in ev if e.host is not None}))
    n_dev = Counter(h for h, _d in groups)
    # GPUs already blamed on a host (localisation.py's GPU-level pass, keyed by the host): an incident
    # on that GPU joins it, one on another GPU of the host is a hypothesis of its own
    # (a host with two GPUs pinned has them keyed by host and GPU: localisation.separate_gpus)
    blamed: dict[str, set[str]] = defaultdict(set)
    own_key: set[tuple[str, str]] = set()
    for c in ix.components:
        if c.kind == "localised_hardware" and c.key[0] == "host":
            if len(c.key) == 3:
                own_key.add((c.key[1], c.key[2]))
                continue
            dd = dominant_device(ix, c.events)
            for gpu in [f"{c.key[1]}/{dd}"] if dd is not None else c.scope.get("gpus", []):
                blamed[c.key[1]].add(gpu.split("/", 1)[1])
    for (h, d), incs in sorted(groups.items()):
        key: tuple[str, ...]
        if (h, d) in own_key:
            key = ("host", h, d)
        elif d in ("host", "nic") or not blamed[h]:
            key = ("host", h) if n_dev[h] == 1 else ("host", h, d)
        else:
            key = ("host", h) if d in blamed[h] else ("host", h, d)
        p = 1.0
        for _take, _a, j in incs:
            p *= 1.0 / max(1, len(ix.expo.job_hosts.get(j, ())) or 1)
        p = min(1.0, p * n_hosts)
        anchor_titles = Counter(ix.sig_title(ev[a].signature_id) for _t, a, _j in incs)
        events = sorted({i for take, _a, _j in incs for i in take})
        inc_jobs = sorted({j for _t, _a, j in incs})
        n_on_host = sum(1 for i in events if ev[i].host == h)
        what = f"GPU {d}" if d not in ("host", "nic") else ("its NIC" if d == "nic" else "the host")
        line = (
            f"{len(incs)} incident{'s' if len(incs) > 1 else ''} on host {h} ({what}): "
            + ", ".join(f"'{t}'" + (f" x{n}" if n > 1 else "") for t, n in anchor_titles.most_common(3))
            + f" came first, then the job's failure ({len(events)} events, {n_on_host} on {h}, in "
            f"{len(inc_jobs)} job{'s' if len(inc_jobs) > 1 else ''}: {', '.join(inc_jobs[:4])}"
            f"{'…' if len(inc_jobs) > 4 else ''}); "
            f"the host where a job's failure begins is one of its hosts by chance ({fmt_p(p)})"
        )
        scope = {"hosts": [h]}
        if d not in ("host", "nic"):
            scope["gpus"] = [f"{h}/{d}"]
        by_sig: dict[int, list[int]] = defaultdict(list)
        for i in events:
            by_sig[ev[i].signature_id].append(i)
        first = True
        for s in sorted(by_sig, key=lambda s: (-len(by_sig[s]), s)):
            ix.add(
                Component(
                    s,
                    "host_incident",
                    key,
                    by_sig[s],
                    p,
                    [line] if first else [],
                    scope,
                    cause_class="network" if d == "nic" else "hardware",
                    count=len(incs),
                )
            )
            first = False
