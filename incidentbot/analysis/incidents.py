"""Rule 4c, incidents: one failure of one job, begun by a hardware or network error on one host.

A GPU that falls off the bus once, an uncorrectable ECC error, a flapping IB cable, a host's
memory or disk failing: each interrupts one job once, and leaves a handful of lines: the kernel's
own line on that host (an Xid with the GPU's PCI bus id, an EDAC or block-device error, an mlx5
port event; often under the host's FQDN), the application's error on the same host a few seconds
later (a CUDA error with the GPU's index, a failed checkpoint write), the peers' errors (NCCL
remote errors, connection refused), the watchdog storm and the launcher's lines when the job
dies. No text repeats often enough on one host for the binomial test of ``localisation.py``,
and grouping by text alone puts every host's Xid 48 into one "failure mode". Counted as what they
are, one incident, the host is plain: its own error came first and the job's failure followed.

An **anchor** is an event (on a host, not taken by an earlier rule, not in a storm) whose text
means hardware or network (``Settings.incident_classes``) and that is *followed*: another
non-benign text on the same host of the same job within ``incident_gap_s``. A text that is
followed less often than ``incident_follow_frac`` of its occurrences is background (a kernel
warning logged all day), never an anchor. When anchors of the same moment
(``incident_simul_s``) sit on several hosts it is no one host's fault (a switch, a power event):
left to the other rules.

The **incident** is the anchor's job(s) from the anchor on: non-benign events chained by gaps of
at most ``incident_gap_s`` (a storm of the job within the watchdog window bridges the chain, so
the launcher lines after the storm join; the storm itself is left to ``precedence.py``, which
gives it to the hypothesis holding its precursor), the anchor host's events up to
``incident_pre_s`` before it, and the anchor host's events within the watchdog window after it.
Incidents on the same host and device (the GPU, by index or PCI bus id tied to the index; the
NIC; the host itself) are one hypothesis. The test: under chance, the host where a job's failure
begins is any of its hosts, so ``1/n_hosts`` per incident, multiplied over the incidents of one
host and corrected for the number of hosts.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict

from .coverage import is_benign_text
from .gpus import device_of
from .index import Component, Index, fmt_p

__all__ = ["find_incidents"]


def _category(ix: Index, s: int) -> str:
    si = ix.sigs.get(s)
    return si.category if si else ""


def _says_down(ix: Index, s: int) -> bool:
    si = ix.sigs.get(s)
    if si is None:
        return False
    text = f"{si.category} {si.title}".lower()
    return any(m in text for m in ix.S.host_down_markers)


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


def find_incidents(ix: Index) -> None:
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
        if (not benign[s] and (ix.sig_class(s) in S.incident_classes or _category(ix, s) in S.incident_categories))
        or s in down
    }
    if not anchor_sig:
        return
    # per job and host: the job's events on that host, by time (for "followed on the same host")
    jh_times: dict[tuple[str, str], list[float]] = defaultdict(list)
    jh_idx: dict[tuple[str, str], list[int]] = defaultdict(list)
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
    anchors = sorted((i for lst in cand.values() for i in lst), key=lambda i: (ev[i].time, ev[i].id))
    if not anchors:
        return
    sig_times = {s: [ev[i].time for i in ix.by_sig[s]] for s in cand}
    storm_starts: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for s, j, g in ix.storm_bursts:
        storm_starts[j].append((ev[g[0]].time, ev[g[-1]].time, s))
    for j in storm_starts:
        storm_starts[j].sort()
    from .precedence import watchdog_window  # the watchdog's own timeout, read from its text

    host_jobs: dict[str, set[str]] = defaultdict(set)
    for j, h in jh_idx:
        host_jobs[h].add(j)
    incidents: list[tuple[str, str, list[int], int, str]] = []  # (host, device, events, anchor, job)
    used: set[int] = set()
    for a in anchors:
        if a in used or not free[a]:
            continue
        e = ev[a]
        h, t = e.host, e.time
        # the same text at the same moment on other hosts: a shared component, not this host
        st_ = sig_times[e.signature_id]
        lo = bisect.bisect_left(st_, t - S.incident_simul_s)
        hi = bisect.bisect_right(st_, t + S.incident_simul_s)
        if h is not None and any(
            ev[ix.by_sig[e.signature_id][q]].host not in (h, None) for q in range(lo, min(hi, lo + 50))
        ):
            continue
        # the jobs this incident interrupted: the anchor's, and those on the host logging right after it
        jobs = {e.job_id}
        for j in host_jobs[h]:
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
                if not free[i] or benign[ei.signature_id] or i in used:
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
        kind = "gpu" if dev is not None else ("nic" if ix.sig_class(e.signature_id) == "network" else "host")
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
        if d == "host" and len(devs_of[h]) == 1:
            d = next(iter(devs_of[h]))
        groups[(h, d)].append((take, a, j))
    n_hosts = max(2, len({e.host for e in ev if e.host is not None}))
    n_dev = Counter(h for h, _d in groups)
    for (h, d), incs in sorted(groups.items()):
        key = ("host", h) if n_dev[h] == 1 else ("host", h, d)
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
                    "localised_hardware",
                    key,
                    by_sig[s],
                    p,
                    [line] if first else [],
                    scope,
                    cause_class="network" if d == "nic" else "hardware",
                )
            )
            first = False
