"""Rule 1, storms: bursts of one signature from many hosts/ranks within seconds.

Each signature's events in one job are cut into occurrences (gaps above ``burst_gap_s``); an
occurrence holding at least ``storm_min_events`` events (weighed by record count) from
``storm_min_hosts`` hosts (or as many ranks) is a storm burst, set aside for precedence."""

from __future__ import annotations

import bisect
from collections import defaultdict

from .index import Index


# ---- 1. bursts and storms
def find_bursts(ix: Index) -> None:
    S = ix.S
    nocc = 0
    for s in sorted(ix.by_sig):
        per_job: dict[str, list[int]] = defaultdict(list)
        for i in ix.by_sig[s]:
            per_job[ix.ev[i].job_id].append(i)
        for j in sorted(per_job):
            cur: list[int] = []
            last = None
            groups = []
            for i in per_job[j]:
                t = ix.ev[i].time
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
                    ix.occ[i] = nocc
                n_events = ix.weight(g)
                if n_events >= S.storm_min_events and s not in ix.routine:  # every rank's INFO at init is no storm
                    hosts = {ix.ev[i].host for i in g if ix.ev[i].host is not None}
                    ranks = {ix.ev[i].rank for i in g if ix.ev[i].rank is not None}
                    # aggregate records keep only a first rank: many events behind few records with
                    # no host are many ranks too
                    many_ranks = len(ranks) >= S.storm_min_events or (n_events > len(g) and len(ranks) >= 1)
                    if len(hosts) >= S.storm_min_hosts or (not hosts and many_ranks):
                        ix.storm_bursts.append((s, j, g))
                        ix.in_storm.update(g)


def is_storage_text(ix: Index, s: int) -> bool:
    """A line about a shared file system (``Settings.storage_markers``: nfs, Lustre, checkpoint I/O)."""
    return ix.sig_class(s) != "hardware" and ix.sig_mentions(s, ix.S.storage_markers)


def shared_storms(ix: Index, hyps: list, owner: dict[int, int]) -> None:
    """Storms that hit most running jobs of one cluster at once (starts within
    ``cluster_storm_span_s``, at least ``cluster_storm_min_jobs`` jobs and ``cluster_storm_share``
    of those running there) point at a component the jobs share: a storage server, a switch, the
    scheduler. Every such window of one cluster is one hypothesis (a storage server that stalls
    several times is one cause), with the unexplained lines just before the storms in those jobs
    that do not mean a host's own hardware fault (``nfs: server not responding``) and the storms'
    abort lines. A storm whose job shows a line already explained by another hypothesis (a
    localised host, a switch) just before it is left to ``precedence.py``."""
    from .hypothesis import Hyp, give
    from .incidents import companions
    from .precedence import watchdog_window

    S = ix.S
    ev = ix.ev

    def window(b: int) -> list[int]:
        """The lines of the storm's job within the watchdog's window before it starts."""
        s, j, g = ix.storm_bursts[b]
        t0 = ev[g[0]].time
        tk = ix.job_times[j]
        lo = bisect.bisect_left(tk, t0 - watchdog_window(ix, s))
        hi = bisect.bisect_right(tk, t0 + 2.0)
        return ix.by_job[j][lo:hi]

    def lines_before(b: int) -> tuple[list[int], bool]:
        """The storm's unexplained lines before it (not a host's own hardware fault), and whether a
        line another hypothesis explains as hardware or network came there too."""
        mine: list[int] = []
        explained = False
        for i in window(b):
            if i in ix.in_storm or ev[i].signature_id in ix.routine:
                continue
            if i in owner:
                if ix.sig_class(ev[i].signature_id) in ("hardware", "network"):
                    explained = True
                continue
            if ix.sig_class(ev[i].signature_id) != "hardware":
                mine.append(i)
        return mine, explained

    def claim(h: int, ids) -> None:
        for i in ids:
            if i not in owner:
                hyps[h].add_events(ev[i].signature_id, [i], None)
                owner[i] = h

    by_cluster: dict[str, list[int]] = defaultdict(list)
    for b, (_s, _j, g) in enumerate(ix.storm_bursts):
        if g[0] not in owner:
            by_cluster[ev[g[0]].cluster or ""].append(b)
    # storms right after a storage line in their job (nfs, Lustre, checkpoint I/O)
    after_storage_line = {
        b
        for bs in by_cluster.values()
        for b in bs
        if any(i not in ix.in_storm and is_storage_text(ix, ev[i].signature_id) for i in window(b))
    }
    for c in sorted(by_cluster):
        bs = sorted(by_cluster[c], key=lambda b: (ev[ix.storm_bursts[b][2][0]].time, b))
        windows: list[list[int]] = []
        together: list[tuple[list[int], int, int]] = []  # two jobs or more at once, no more to say
        k = 0
        while k < len(bs):
            t0 = ev[ix.storm_bursts[bs[k]][2][0]].time
            m = k
            while m + 1 < len(bs) and ev[ix.storm_bursts[bs[m + 1]][2][0]].time - t0 <= S.cluster_storm_span_s:
                m += 1
            win = bs[k : m + 1]
            jobs = {ix.storm_bursts[b][1] for b in win}
            t1 = ev[ix.storm_bursts[bs[m]][2][0]].time
            running = {j for j in ix.jobs_of_cluster.get(c, ()) if ix.job_span[j][0] <= t1 and ix.job_span[j][1] >= t0}
            wide = len(jobs) >= S.cluster_storm_min_jobs and len(jobs) >= S.cluster_storm_share * max(1, len(running))
            # storms of several jobs at once, each after a storage line (nfs, Lustre, checkpoint I/O):
            # the file system they share stalled, however many other jobs ran on
            stalled = {ix.storm_bursts[b][1] for b in win if b in after_storage_line}
            if wide or (len(jobs) >= 2 and len(stalled) >= 2):
                windows.append(win)
                k = m + 1
            elif len(jobs) >= 2:
                together.append((win, len(jobs), len(running)))
                k = m + 1
            else:
                k += 1
        after_storage = [b for b in bs if b in after_storage_line]
        if not windows and len({ix.storm_bursts[b][1] for b in after_storage}) < 2:
            continue
        h = None
        n_jobs: list[tuple[int, int]] = []
        for win in windows:
            take: list[int] = []
            pre: list[int] = []
            for b in win:
                mine, explained = lines_before(b)
                if explained:
                    continue
                take.append(b)
                pre.extend(mine)
            if len({ix.storm_bursts[b][1] for b in take}) < min(2, S.cluster_storm_min_jobs):
                continue
            # the file system's own lines elsewhere in the cluster at that time (an idle node's mount)
            w0 = min(ev[ix.storm_bursts[b][2][0]].time for b in take)
            for s2 in ix.by_sig:
                if not is_storage_text(ix, s2):
                    continue
                for i in ix.by_sig[s2]:
                    e = ev[i]
                    if (
                        i not in owner
                        and (e.cluster or "") == c
                        and w0 - watchdog_window(ix, ix.storm_bursts[take[0]][0]) <= e.time <= w0 + 2.0
                    ):
                        pre.append(i)
            if h is None:
                h = len(hyps)
                hyps.append(Hyp(ix, [], shared=c))
            for i in pre:
                if i not in owner:
                    hyps[h].add_events(ev[i].signature_id, [i], None)
                    owner[i] = h
            for b in take:
                s, j, g = ix.storm_bursts[b]
                give(hyps, owner, h, s, g, None)
                for i in companions(ix, j, g, owner):
                    hyps[h].add_events(ev[i].signature_id, [i], None)
                    owner[i] = h
            running = {
                j
                for j in ix.jobs_of_cluster.get(c, ())
                if ix.job_span[j][0] <= ev[ix.storm_bursts[take[-1]][2][0]].time
                and ix.job_span[j][1] >= ev[ix.storm_bursts[take[0]][2][0]].time
            }
            n_jobs.append((len({ix.storm_bursts[b][1] for b in take}), len(running)))
        if h is None and not windows:
            h = len(hyps)
            hyps.append(Hyp(ix, [], shared=c))
        if h is not None:
            hyps[h].shared_windows = n_jobs
            # the same file system stalling again, under fewer jobs: a storm of this cluster right
            # after a storage line in its job (nfs: server not responding) is the same component's
            # (storms of two or more jobs, each after such a line, are one file system's however far apart)
            if hyps[h].storage or not windows:
                for b in after_storage:
                    _s, j, g = ix.storm_bursts[b]
                    if g[0] in owner:
                        continue
                    claim(h, lines_before(b)[0] + list(g) + companions(ix, j, g, owner))
                    hyps[h].shared_after_storage += 1
            # two jobs' storms within minutes in a cluster whose file system is known to stall: it
            # again (alone, two jobs at once say only "something shared"; cluster_storm_min_jobs)
            if hyps[h].storage:
                for win, n_hit, n_running in together:
                    if any(ix.storm_bursts[b][2][0] in owner for b in win):
                        continue
                    for b in win:
                        _s, j, g = ix.storm_bursts[b]
                        claim(h, list(g) + companions(ix, j, g, owner))
                    hyps[h].shared_windows.append((n_hit, n_running))
