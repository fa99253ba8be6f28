"""Rule 6b, incidents: one job's failure is several lines within seconds, and one cause.

A GPU that fails logs its Xid on the host, the CUDA error on its rank, the launcher's "child
failed" a few seconds later, and the peers' NCCL errors; a host that goes down logs its node
failure and its peers' connect errors. Counted one signature at a time these are many small
texts, each shared by many unrelated failures; together they are one *episode*: the lines of one
job with gaps of at most ``episode_gap_s`` (and at most ``episode_max_span_s`` in all).

- A text is *background* when most of its lines come alone (a health check's known false
  positive, a driver's routine register message, progress lines): it neither leads nor joins an
  episode. A text that comes with others at least ``incident_lead_share`` of the time does.
- An episode of at least two texts whose earliest line of hardware (else network) meaning sits
  on one host points at that host: the *host incident* (one hypothesis per host, its episodes
  added up), which the episode's other lines join, wherever they were logged. When that line is
  already explained (a localised host, a switch), the other lines join that hypothesis.
- An episode with no such line: its other lines follow its first line's text (``follow``), so
  coverage puts "the child process failed" with the error that made it fail.

Storms are not part of episodes: ``precedence.py`` gives a storm to the incident of the host that
failed first in its job (within the watchdog's window), and ``companions`` brings the storm's own
abort lines with it."""

from __future__ import annotations

import bisect
from collections import defaultdict

from .coverage import is_benign_text, is_job_level_text
from .hypothesis import Hyp
from .index import Index

LEAD_CLASSES = ("hardware", "network")


def episodes(ix: Index) -> list[list[int]]:
    """The episodes of every job: runs of non-storm, non-benign lines with short gaps."""
    S = ix.S
    skip_sig = {s for s in ix.by_sig if is_benign_text(ix, s) or is_job_level_text(ix, s)}
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
    """Signatures whose lines come with other texts at least ``incident_lead_share`` of the time."""
    w = ix.w
    with_others: dict[int, int] = defaultdict(int)
    total: dict[int, int] = defaultdict(int)
    for ep in eps:
        sigs = {ix.ev[i].signature_id for i in ep}
        for i in ep:
            s = ix.ev[i].signature_id
            total[s] += w[i]
            if len(sigs) >= 2:
                with_others[s] += w[i]
    return {s for s, n in total.items() if with_others[s] >= ix.S.incident_lead_share * n}


def find_incidents(ix: Index, hyps: list[Hyp], owner: dict[int, int]) -> tuple[set[int], dict[int, int]]:
    """Host incidents (new hypotheses, owned events) and, for episodes without a host, which
    leftover line follows which text. Returns (indices of the incident hypotheses, follow)."""
    eps = episodes(ix)
    leads = leading_texts(ix, eps)
    ev = ix.ev
    incident_of: dict[str, int] = {}
    follow: dict[int, int] = {}
    for ep in eps:
        ep = [i for i in ep if ev[i].signature_id in leads]
        sigs = {ev[i].signature_id for i in ep}
        if len(sigs) < 2:
            continue
        lead = None
        for cls in LEAD_CLASSES:
            lead = next((i for i in ep if ev[i].host is not None and ix.sig_class(ev[i].signature_id) == cls), None)
            if lead is not None:
                break
        left = [i for i in ep if i not in owner]
        if not left:
            continue
        if lead is None:
            first = ep[0]
            if first in owner and ix.S.episode_join_owned:
                h = owner[first]
                _join(ix, hyps, owner, h, left)
            else:
                for i in left:
                    follow[i] = ev[first].signature_id
            continue
        h = owner.get(lead)
        if h is None:
            host = ev[lead].host
            h = incident_of.get(host)
            if h is None:
                h = incident_of[host] = len(hyps)
                hyps.append(Hyp(ix, [], incident=(host, ix.sig_class(ev[lead].signature_id))))
        elif not ix.S.episode_join_owned and not hyps[h].incident:
            continue
        _join(ix, hyps, owner, h, left)
    return set(incident_of.values()), follow


def _join(ix: Index, hyps: list[Hyp], owner: dict[int, int], h: int, ids: list[int]) -> None:
    by_sig: dict[int, list[int]] = defaultdict(list)
    for i in ids:
        by_sig[ix.ev[i].signature_id].append(i)
    for s, ii in sorted(by_sig.items()):
        if not ix.apart_allows(hyps[h].sigs | {s}):
            continue
        hyps[h].add_events(s, ii, None)
        for i in ii:
            owner[i] = h
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
