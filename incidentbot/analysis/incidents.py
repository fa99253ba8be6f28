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
from dataclasses import dataclass, field

from .coverage import is_benign_text, is_job_level_text
from .hypothesis import Hyp
from .index import Index

LEAD_CLASSES = ("hardware", "network")


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

    @property
    def hyps(self) -> frozenset[int]:
        return frozenset(self.by_host.values())

    def incident(self, ix: Index, hyps: list[Hyp], host: str, cls: str) -> int:
        h = self.by_host.get(host)
        if h is None:
            h = self.by_host[host] = len(hyps)
            hyps.append(Hyp(ix, [], incident=(host, cls)))
        return h

    def take_episode(self, ix: Index, hyps: list[Hyp], owner: dict[int, int], first: int) -> int:
        """The episode of ``first`` (no host line in it) becomes the incident of the host that
        failed first, as when a storm followed it: the collective hung on that rank's error."""
        e = ix.ev[first]
        h = self.incident(ix, hyps, e.host or "?", ix.sig_class(e.signature_id))
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
    """Host incidents (new hypotheses, owned events) and, for episodes without a host line, which
    leftover line follows which text."""
    eps = episodes(ix)
    leads = leading_texts(ix, eps)
    ev = ix.ev
    out = Incidents()
    out.leads = leads
    joins = joining_texts(ix, eps, leads)
    for ep in eps:
        benign = {i for i in ep if is_benign_text(ix, ev[i].signature_id)}
        core = [i for i in ep if i not in benign and ev[i].signature_id in leads]
        n_core = len({ev[i].signature_id for i in core})
        # the host line: the first of hardware (else network) meaning, not benign-sounding
        lead = None
        for cls in LEAD_CLASSES:
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
            h = out.incident(ix, hyps, ev[lead].host or "?", ix.sig_class(ev[lead].signature_id))
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
