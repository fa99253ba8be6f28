"""Rule 7, precedence: a storm goes to the cause whose events came first."""

from __future__ import annotations

import bisect
import re
from collections import Counter, defaultdict

from .hypothesis import Hyp, give
from .incidents import Incidents, companions
from .index import Index, fmt_n
from .storms import is_storage_text

# ---- 7. storms and their precursors
_TIMEOUT_MS = re.compile(r"timeout\(ms\)\s*=\s*(\d{1,9})", re.IGNORECASE)


def watchdog_window(ix: Index, s: int) -> float:
    """How long before a storm its cause may lie: the watchdog's own timeout when the text states
    it (``Timeout(ms)=1800000``, in the title or the signature's details), else the default
    (``Settings.watchdog_timeout_s``, settable); plus a margin for the time the watchdog takes."""
    S = ix.S
    si = ix.sigs.get(s)
    ms = None
    if si is not None:
        for k, v in si.details:
            if k in ("timeout_ms", "timeout(ms)"):
                ms = int(v) if str(v).isdigit() else None
        m = _TIMEOUT_MS.search(si.title) if ms is None else None
        if m:
            ms = int(m.group(1))
    timeout = ms / 1000.0 if ms else S.watchdog_timeout_s
    return timeout * S.watchdog_margin + S.watchdog_slack_s


def _switch(ix: Index, i: int) -> str | None:
    """The switch above event ``i``'s host, when its host and the topology say."""
    host = ix.ev[i].host
    return ix.topo.get(host) if host else None


def attribute_storms(ix: Index, hyps: list[Hyp], owner: dict[int, int], incidents: Incidents | None = None) -> None:
    """Each storm to the cause of the nearest reliable precursor in its job within the watchdog's
    window. A line of a host incident, or of an episode of several texts (``incidents.py``: the
    host whose own error came first in that job), is a precursor without further proof; a lone
    precursor line must precede storms reliably. A storm starting as another storm of the same
    job ends (the ranks' aborts after their watchdogs) goes with it; the storm's own abort lines
    come with it."""
    incidents = incidents or Incidents()
    S = ix.S
    if not ix.storm_bursts:
        return
    storm_sigs = {s for s, _, _ in ix.storm_bursts}
    # candidate precursors: for each burst, signatures with an event shortly before it in the job
    pre_count: Counter = Counter()
    bursts_per_sig = Counter(s for s, _, _ in ix.storm_bursts)
    window = {s: watchdog_window(ix, s) for s in storm_sigs}
    max_window = max(window.values())
    starts: list[tuple[int, str, float, float]] = []
    for s, j, g in ix.storm_bursts:
        t0 = ix.ev[g[0]].time
        starts.append((s, j, t0, ix.ev[g[-1]].time))
        tk = ix.job_times[j]
        lo = bisect.bisect_left(tk, t0 - window[s])
        hi = bisect.bisect_right(tk, t0 + 2.0)
        seen = set()
        for k in range(lo, hi):
            i = ix.by_job[j][k]
            ps = ix.ev[i].signature_id
            if ps in storm_sigs:
                # a text that storms (a watchdog's timeout) says a collective hung, not why: one
                # rank's line of it just before the others' is the same hang seen from another op
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
    for _s, j, t0, _ in starts:
        storm_starts_by_job[j].append(t0)
    for j in storm_starts_by_job:
        storm_starts_by_job[j].sort()
    for ps in cand_p:
        for i in ix.by_sig[ps]:
            e = ix.ev[i]
            ss = storm_starts_by_job.get(e.job_id)
            if not ss:
                continue
            k = bisect.bisect_left(ss, e.time - 2.0)
            if k < len(ss) and ss[k] - e.time <= max_window:
                near_storm[ps] += 1
    reliable: set[tuple[int, int]] = set()
    for (ps, s), c in pre_count.items():
        frac_storms = c / bursts_per_sig[s]
        frac_near = near_storm[ps] / max(1, len(ix.by_sig[ps]))
        # a text that means hardware, network or a file system stalling says what it is: a few
        # storms after it are enough (most of its lines sit just before storms)
        known = ix.sig_class(ps) in ("hardware", "network") or is_storage_text(ix, ps)
        if (c >= 2 or frac_storms >= 0.5 or (known and frac_near >= 0.8)) and frac_near >= 0.3:
            reliable.add((ps, s))
    # a line of a hypothesis already pinned to a host's hardware or a switch, in the storm's job just
    # before it, is the rank that failed first (as fr_trace finds it): no need to precede storms often
    pinned = {hi for hi, h in enumerate(hyps) if any(c.kind in ("localised_hardware", "switch") for c in h.comps)}
    new_h: dict[tuple, int] = {}  # (precursor signature, its switch) -> new storm hypothesis index
    stats: dict[tuple[int, int], dict] = {}  # (hyp, storm sig) -> bursts, events, lags, precursor sigs
    order = sorted(range(len(ix.storm_bursts)), key=lambda b: (starts[b][2], b))
    last_in_job: dict[str, tuple[float, int | None, int | None]] = {}  # job -> (end, hypothesis, precursor)
    for b in order:
        s, j, g = ix.storm_bursts[b]
        t0, t1 = starts[b][2], starts[b][3]
        if g[0] in owner:
            continue  # a storm across a cluster's jobs at once (storms.shared_storms)
        prev = last_in_job.get(j)
        if prev is not None and t0 - prev[0] <= S.storm_companion_s:
            # the same collective failure: goes where the storm before it went (or nowhere)
            last_in_job[j] = (max(prev[0], t1), prev[1], prev[2])
            if prev[1] is not None and prev[2] is not None and ix.apart_allows(hyps[prev[1]].sigs | {s}):
                _attach(ix, hyps, owner, prev[1], s, j, g)
                st = stats.setdefault((prev[1], s), {"n": 0, "events": 0, "lags": [], "pre": Counter()})
                st["n"] += 1
                st["events"] += ix.weight(g)
                st["lags"].append(t0 - ix.ev[prev[2]].time)
                st["pre"][ix.ev[prev[2]].signature_id] += 1
            continue
        last_in_job[j] = (t1, None, None)
        tk = ix.job_times[j]
        lo = bisect.bisect_left(tk, t0 - window[s])
        hi = bisect.bisect_right(tk, t0 + 2.0)
        best = None
        for k in range(hi - 1, lo - 1, -1):
            i = ix.by_job[j][k]
            ps = ix.ev[i].signature_id
            if i in ix.in_storm or ps in storm_sigs:
                continue
            if (ps, s) in reliable or incidents.precursor(ix, owner, i) or owner.get(i) in pinned:
                best = i
                break
        if best is None:
            continue
        ps = ix.ev[best].signature_id
        h = owner.get(best)
        if h is None and incidents.precursor(ix, owner, best) and (ps, s) not in reliable:
            h = incidents.take_episode(ix, hyps, owner, incidents.first_of.get(best, best))
        if h is None:
            sw = _switch(ix, best)
            if ix.sig_class(ps) == "hardware" and ix.ev[best].host:
                sw = ix.ev[best].host  # a GPU's or host's own fault: that host, not its switch
            hk = (ps, sw)
            if hk not in new_h:
                new_h[hk] = len(hyps)
                hyps.append(Hyp(ix, [], storm_precursor=ps))
            h = new_h[hk]
            pre_ids = [
                i
                for i in ix.by_sig[ps]
                if i not in owner
                and i not in ix.in_storm
                and (sw is None or _switch(ix, i) == sw or ix.ev[i].host == sw)
            ]
            give(hyps, owner, h, ps, pre_ids, None)
        if not ix.apart_allows(hyps[h].sigs | {s}):
            continue
        _attach(ix, hyps, owner, h, s, j, g)
        last_in_job[j] = (t1, h, best)
        st = stats.setdefault((h, s), {"n": 0, "events": 0, "lags": [], "pre": Counter()})
        st["n"] += 1
        st["events"] += ix.weight(g)
        st["lags"].append(t0 - ix.ev[best].time)
        st["pre"][ps] += 1
    for h, s in sorted(stats):
        stat = stats[(h, s)]
        nb, ne, lags = stat["n"], stat["events"], sorted(stat["lags"])
        med = lags[len(lags) // 2]
        pre = " or ".join(f"'{ix.sig_title(x)}'" for x, _ in stat["pre"].most_common(2))
        hyps[h].storm_lines.append(
            f"{nb} of {bursts_per_sig[s]} storms of '{ix.sig_title(s)}' ({fmt_n(ne)} events from many ranks "
            f"within seconds) came {med:.0f} s (median) after {pre} in the same job: the storm is a consequence"
        )
        hyps[h].storm_p.append(min(1.0, 0.5 ** (nb + 1)))


def _attach(ix: Index, hyps: list[Hyp], owner: dict[int, int], h: int, s: int, j: str, g: list[int]) -> None:
    give(hyps, owner, h, s, g, None)
    for i in companions(ix, j, g, owner):
        if ix.apart_allows(hyps[h].sigs | {ix.ev[i].signature_id}):
            hyps[h].add_events(ix.ev[i].signature_id, [i], None)
            owner[i] = h
