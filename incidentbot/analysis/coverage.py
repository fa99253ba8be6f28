"""Rule 8, coverage: every failure mode gets a hypothesis people can vote on, resolve and link.

After the evidence rules, what is left of each signature (events no hypothesis holds) becomes
one hypothesis of its own when it stands for at least ``cover_min_events`` stored events:

- storms no precursor explains: "collective hang, cause not yet known" (never dropped); when the
  storms of one signature hit most running jobs of a cluster within ``cluster_storm_span_s`` of
  each other, a shared component of that cluster (switch, storage, scheduler) is named instead;
- everything else: "one failure mode, cause not yet known", with the class the text's own
  meaning gives (or unknown) and a low confidence.

Benign noise stays out: a signature whose text says it is benign (INFO/WARNING lines, slow
checkpoints, loss-scale overflows: ``Settings.benign_markers``) AND whose
leftover is spread evenly (over ``benign_min_places`` hosts (jobs when no host is given; or one per event), no host holding more than
``benign_max_host_share`` of it). A benign-sounding text concentrated on one host or job is
still covered: its spread, not its words, is what would make it harmless.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TypedDict

from .index import Index, confidence_from, fmt_n, fmt_p
from .model import Proposal
from .stats import binom_sf


def is_benign_text(ix: Index, s: int) -> bool:
    """The text says it is benign (a level word, a progress report) and says nothing failed, or
    that what failed is being retried."""
    S = ix.S
    if not ix.sig_mentions(s, S.benign_markers):
        return False
    return not ix.sig_mentions(s, S.failure_markers) or ix.sig_mentions(s, S.transient_markers)


def is_routine_text(ix: Index, s: int) -> bool:
    """Benign and routine by design (``Settings.routine_markers``)."""
    return ix.sig_mentions(s, ix.S.routine_markers)


def routine_signatures(ix: Index) -> set[int]:
    """Routine texts spread evenly over the fleet: known by meaning and spread as benign noise, they
    take part in no rule (a routine text on one host is still that host's to explain)."""
    return {s for s in sorted(ix.by_sig) if is_routine_text(ix, s) and spread_evenly(ix, ix.by_sig[s])}


def is_job_level_text(ix: Index, s: int) -> bool:
    """A line about the whole job (a scheduler's time limit): where it shows says nothing."""
    return ix.sig_mentions(s, ix.S.job_level_markers)


def is_scheduler_text(ix: Index, s: int) -> bool:
    """The scheduler's line on how a job ended (a SLURM or Kubernetes category): it says the job
    stopped, not what broke it."""
    si = ix.sigs.get(s)
    return si is not None and si.category.lower().startswith(ix.S.scheduler_categories)


def spread_evenly(ix: Index, idx: list[int]) -> bool:
    """Leftover events over many jobs, no host holding much of them: background, not a fault."""
    S = ix.S
    ev = ix.ev
    jobs = {ev[i].job_id for i in idx}
    ranks = [ev[i].rank for i in idx if ev[i].rank is not None]
    rank0 = bool(ranks) and sum(1 for r in ranks if r == 0) >= S.rank0_frac * len(ranks)
    # logged by rank 0 only: the host it shows on is where rank 0 runs, so its spread is over jobs
    places = jobs if rank0 else ({ev[i].host for i in idx if ev[i].host is not None} or jobs)
    if len(places) < min(S.benign_min_places, len(idx)):
        return False
    if rank0:
        return True
    hosts: Counter = Counter()
    for i in idx:
        if ev[i].host is not None:
            hosts[ev[i].host] += ix.w[i]
    if hosts and hosts.most_common(1)[0][1] > S.benign_max_host_share * sum(hosts.values()):
        return False
    return True


def _stopped_its_job(ix: Index, i: int) -> bool:
    """The line came as its job stopped: a scheduler's line about the whole job or on how it ended
    (a SLURM kill names no step or rank, so only its meaning says the job stopped), or the job's
    training stopped or restarted right after it (``incidents.interrupted``)."""
    from .incidents import interrupted

    s = ix.ev[i].signature_id
    return is_job_level_text(ix, s) or is_scheduler_text(ix, s) or interrupted(ix, [i], restart=True)


class _Members(TypedDict):
    signature_ids: list[int]
    event_ids: list[int]


def _members(ix: Index, idx) -> _Members:
    """A proposal's signature and event ids for the records ``idx``."""
    return {
        "signature_ids": sorted({ix.ev[i].signature_id for i in idx}),
        "event_ids": sorted(ix.ev[i].id for i in idx),
    }


def _where(ix: Index, idx: list[int]) -> tuple[list[str], list[str], str]:
    ev = ix.ev
    jobs = sorted({ev[i].job_id for i in idx})
    hosts = sorted({h for i in idx if (h := ev[i].host) is not None})
    span = ""
    if idx:
        t0, t1 = min(ev[i].time for i in idx), max(ev[i].time for i in idx)
        span = f"over {(t1 - t0) / 3600:.1f} h" if t1 - t0 >= 3600 else f"over {(t1 - t0) / 60:.0f} min"
    return jobs, hosts, span


def _cluster_wide(ix: Index, bursts: list[tuple[str, list[int]]]) -> tuple[str, int, int, float, float] | None:
    """(cluster, jobs hit, jobs running, first start, last start) when the storms hit most running
    jobs of one cluster at once."""
    S = ix.S
    ev = ix.ev
    by_cluster: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for j, g in bursts:
        c = ev[g[0]].cluster or ""
        by_cluster[c].append((ev[g[0]].time, j))
    best = None
    for c, starts in sorted(by_cluster.items()):
        starts.sort()
        lo = 0
        for hi in range(len(starts)):
            while starts[hi][0] - starts[lo][0] > S.cluster_storm_span_s:
                lo += 1
            jobs_hit = {j for _, j in starts[lo : hi + 1]}
            if len(jobs_hit) < S.cluster_storm_min_jobs:
                continue
            t0, t1 = starts[lo][0], starts[hi][0]
            running = {j for j in ix.jobs_of_cluster.get(c, ()) if ix.job_span[j][0] <= t1 and ix.job_span[j][1] >= t0}
            if len(jobs_hit) >= S.cluster_storm_share * max(1, len(running)):
                if best is None or len(jobs_hit) > best[1]:
                    best = (c, len(jobs_hit), len(running), t0, t1)
    return best


def _merge_either_order(ix: Index, groups: dict[int, list[int]]) -> None:
    """Two texts that come together, now one first and now the other (two ranks' lines of one
    failure, milliseconds apart), are one failure mode: the group each leads holds the other's
    text, both ways. Such groups are merged into the larger's. A text that only ever follows (the
    launcher's "child failed") leads no group holding the first, and storms keep their own."""
    sigs = {
        s: {ix.ev[i].signature_id for i in idx}
        for s, idx in groups.items()
        if ix.weight([i for i in idx if i in ix.in_storm]) * 2 < ix.weight(idx)  # storms: their own rules
    }
    parent = {s: s for s in sigs}

    def find(s: int) -> int:
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    for a in sorted(sigs):
        for b in sorted(sigs[a]):
            if b != a and b in sigs and a in sigs[b]:
                ra, rb = find(a), find(b)
                if ra != rb:
                    # the larger group's lead names the merged one (ties: the lower id, deterministic)
                    big, small = sorted((ra, rb), key=lambda r: (-ix.weight(groups[r]), r))
                    parent[small] = big
    for s in sorted(sigs):
        r = find(s)
        if r != s:
            groups[r].extend(groups.pop(s))
            groups[r].sort()


def _hang_version(ix: Index, bursts: list[tuple[str, list[int]]]) -> tuple[str, str, int, float, float] | None:
    """The one version value (code v1.3, or a torch, a driver) that storms with no precursor
    concentrate on beyond the share of steps it ran: P(at least k of the n storms there), binomial,
    Bonferroni over every value tried; at least ``hang_version_min`` storms there and below
    ``alpha_onset``. Returns (dimension, value, k, share, p)."""
    S = ix.S
    if len(bursts) < S.hang_version_min:
        return None
    E: dict[tuple[str, str], float] = defaultdict(float)
    tot = 0.0
    for _j, code, vers, x in ix.expo.segments:
        tot += x
        if code is not None:
            E[("code_version", code)] += x
        for name, v in vers:
            E[(name, v)] += x
    if tot <= 0:
        return None
    k_of: Counter = Counter()
    for _j, g in bursts:
        e = ix.ev[g[0]]
        if e.code_version is not None:
            k_of[("code_version", e.code_version)] += 1
        for name, v in e.versions:
            k_of[(name, v)] += 1
    tried = [dv for dv, x in E.items() if x < (1 - S.onset_stray_frac) * tot]
    best = None
    for dv in sorted(tried):
        k = k_of.get(dv, 0)
        if k < S.hang_version_min:
            continue
        q = E[dv] / tot
        p = min(1.0, binom_sf(k, len(bursts), q) * len(tried))
        if p < S.alpha_onset and (best is None or p < best[4]):
            best = (dv[0], dv[1], k, q, p)
    return best


def cover(ix: Index, owner: dict[int, int], follow: dict[int, int] | None = None) -> list[Proposal]:
    """Hypotheses for what no evidence rule explained: one per signature, with the lines that
    ``follow`` it (``incidents.py``: the other lines of its episodes; a storm's abort lines)."""
    from .cooccurrence import scope_value  # cooccurrence reads this module's text tests
    from .incidents import companions  # incidents reads this module's text tests

    S = ix.S
    follow = dict(follow or {})
    # a storm starting as another storm of its job ends is the same failure (the ranks' aborts
    # after their watchdogs): it follows the first storm's text, and so do its abort lines
    head: dict[str, tuple[float, int]] = {}
    for s2, j, g in sorted(ix.storm_bursts, key=lambda b: (ix.ev[b[2][0]].time, b[0], b[1])):
        if g[0] in owner:
            continue
        t0, t1 = ix.ev[g[0]].time, ix.ev[g[-1]].time
        prev = head.get(j)
        if prev is not None and t0 - prev[0] <= S.storm_companion_s:
            lead = prev[1]
            head[j] = (max(t1, prev[0]), lead)
            for i in g:
                follow[i] = lead
        else:
            lead = s2
            head[j] = (t1, s2)
        for i in companions(ix, j, g, owner):
            follow.setdefault(i, lead)
    groups: dict[int, list[int]] = defaultdict(list)
    for s in sorted(ix.by_sig):
        for i in ix.by_sig[s]:
            if i not in owner:
                groups[follow.get(i, s)].append(i)
    _merge_either_order(ix, groups)
    out: list[Proposal] = []
    for s in sorted(groups):
        left = sorted(groups[s])
        n = ix.weight(left)
        if n < S.cover_min_events and not (
            S.cover_interruptions and not is_benign_text(ix, s) and any(_stopped_its_job(ix, i) for i in left)
        ):
            continue
        title = ix.sig_title(s)
        text_class = ix.sig_class(s)
        storm_left = [i for i in left if i in ix.in_storm]
        bursts = [(j, g) for s2, j, g in ix.storm_bursts if s2 == s and g[0] not in owner]
        if storm_left and ix.weight(storm_left) * 2 >= n and bursts:
            jobs, hosts, span = _where(ix, left)
            wide = _cluster_wide(ix, bursts)
            hang_ids = set(left)
            if wide is not None:
                c, hit, running, t0, t1 = wide
                # the storms inside that window are the shared component's; any others stay a hang
                shared = [
                    (j, g) for j, g in bursts if (ix.ev[g[0]].cluster or "") == c and t0 <= ix.ev[g[0]].time <= t1
                ]
                shared_ids = [i for _j, g in shared for i in g]
                hang_ids -= set(shared_ids)
                where = f"cluster {c}" if c else "the fleet"
                lines = [
                    f"{len(shared)} storms of '{title}' ({fmt_n(ix.weight(shared_ids))} events from many ranks "
                    f"within seconds) hit {hit} of the {running} jobs running on {where} within "
                    f"{max(1.0, (t1 - t0) / 60):.0f} min: a component they share (switch, storage, scheduler) "
                    f"rather than any one job",
                    "no error on any one host or rank came before them",
                ]
                out.append(
                    Proposal(
                        title=f"Storm across every job of {where} at once: shared component (switch, storage or "
                        f"scheduler)",
                        cause_class="infrastructure",
                        scope={"clusters": [c]} if c else {},
                        confidence=S.cover_confidence_shared,
                        evidence=lines,
                        **_members(ix, shared_ids),
                        kind="shared_component",
                        key=f"shared:{c}:{s}",
                    )
                )
            hang_bursts = [(j, g) for j, g in bursts if g[0] in hang_ids]
            split = _hang_version(ix, hang_bursts)
            if split is not None:
                d, v, k, q, p = split
                on_v = sorted(i for i in hang_ids if scope_value(ix.ev[i].code_version, ix.ev[i].versions, d) == v)
                hang_ids -= set(on_v)
                dn = "code" if d == "code_version" else d
                jobs, hosts, span = _where(ix, on_v)
                out.append(
                    Proposal(
                        title=f"Collective hangs only on {dn} {v}: storms of {title}",
                        cause_class="software",
                        scope={"versions": [f"{d}={v}"], "jobs": jobs[:20]},
                        confidence=confidence_from(p),
                        evidence=[
                            f"{k} of {len(hang_bursts)} storms of '{title}' with no error before them came on "
                            f"{dn} {v}, which ran {q:.0%} of the steps ({fmt_p(p)}): a hang in that code or "
                            f"version (a deadlock, a collective one rank skips), not a host or the network",
                            f"in {len(jobs)} job{'s' if len(jobs) != 1 else ''} {span}",
                        ],
                        **_members(ix, on_v),
                        kind="regression",
                        key=f"hang:{s}:{d}={v}",
                    )
                )
            # hangs with nothing before them: those on one code version are one failure mode to look
            # into (the same code hanging again; too few for the version test above), the rest one
            # per run (two runs hanging days apart on different code share only the op they hung in)
            groups_h: dict[tuple[str, str], list[int]] = defaultdict(list)
            for i in sorted(hang_ids):
                e = ix.ev[i]
                groups_h[("code", e.code_version) if e.code_version else ("run", ix.run_of[e.job_id])].append(i)
            for (what, name), hang in sorted(groups_h.items()):
                if ix.weight(hang) < S.cover_min_events:
                    continue
                hang_set = set(hang)
                n_b = sum(1 for _j, g in bursts if g[0] in hang_set)
                jobs, _hosts, span = _where(ix, hang)
                runs = sorted({ix.run_of[ix.ev[i].job_id] for i in hang})
                where = f"code {name}" if what == "code" else f"run {name}"
                lines = [
                    f"{n_b} storm{'s' if n_b != 1 else ''} of '{title}' ({fmt_n(ix.weight(hang))} events from "
                    f"many ranks within seconds) on {where}, in {len(runs)} run{'s' if len(runs) != 1 else ''} "
                    f"({len(jobs)} job{'s' if len(jobs) != 1 else ''}) {span}",
                    "no error on the ranks or hosts that failed first came before them within the watchdog "
                    "window: the hang's cause is not in the events yet",
                ]
                hang_scope: dict[str, list[str]] = {"runs": runs[:20], "jobs": jobs[:20]}
                if what == "code":
                    hang_scope["code_version"] = [name]
                out.append(
                    Proposal(
                        title=f"Collective hang, cause not yet known: storms of {title} on {where}",
                        cause_class="unknown",
                        scope=hang_scope,
                        confidence=S.cover_confidence,
                        evidence=lines,
                        **_members(ix, hang),
                        kind="storm_unexplained",
                        key=f"hang:{s}:{what}:{name}",
                    )
                )
            continue
        if is_benign_text(ix, s) and spread_evenly(ix, left):
            continue
        jobs, hosts, span = _where(ix, left)
        if is_job_level_text(ix, s):
            # the scheduler ended the jobs (a time limit, a preemption): where it shows says nothing,
            # but the jobs stopped, which people want to see and can act on (longer limits, requeue)
            out.append(
                Proposal(
                    title=f"Scheduler ended {len(jobs)} job{'s' if len(jobs) != 1 else ''}: {title}",
                    cause_class=text_class if text_class != "unknown" else "infrastructure",
                    scope={"jobs": jobs[:20]},
                    confidence=S.cover_confidence,
                    evidence=[
                        f"{fmt_n(n)} lines of '{title}' in {len(jobs)} job{'s' if len(jobs) != 1 else ''} {span}: "
                        "a line about the whole job, not any one host's fault"
                    ],
                    **_members(ix, left),
                    kind="scheduler",
                    key=f"scheduler:{s}",
                )
            )
            continue
        occ = len({(ix.ev[i].job_id, ix.occ[i]) for i in left})
        top: Counter[str] = Counter()
        for i in left:
            if (host := ix.ev[i].host) is not None:
                top[host] += ix.w[i]
        host_txt = ""
        if top:
            h, k = top.most_common(1)[0]
            host_txt = f" on {len(hosts)} host{'s' if len(hosts) != 1 else ''} (most on {h}: {k} of {n})"
        lines = [
            f"{fmt_n(n)} events of '{title}' ({occ} occurrences) in {len(jobs)} "
            f"job{'s' if len(jobs) != 1 else ''}{host_txt} {span}",
            "no host, switch, version onset, bad step or precursor explains them: one failure mode, "
            "cause not yet known",
        ]
        if text_class != "unknown":
            lines.append(f"the text itself means {text_class}")
        scope: dict[str, list[str]] = {"jobs": jobs[:20]}
        if hosts and len(hosts) <= 8:
            scope["hosts"] = hosts
        out.append(
            Proposal(
                title=f"One failure mode, cause not yet known: {title}",
                cause_class=text_class,
                scope=scope,
                confidence=S.cover_confidence,
                evidence=lines,
                **_members(ix, left),
                kind="unexplained",
                key=f"unexplained:{s}",
            )
        )
    return out
