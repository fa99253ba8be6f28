"""Rule 1, storms: bursts of one signature from many hosts/ranks within seconds.

Each signature's events in one job are cut into occurrences (gaps above ``burst_gap_s``); an
occurrence holding at least ``storm_min_events`` events (weighed by record count) from
``storm_min_hosts`` hosts (or as many ranks) is a storm burst, set aside for precedence."""

from __future__ import annotations

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
