"""Rule 6, co-occurrence: leftover occurrences that reliably sit next to a hypothesis' events join it."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict

from .coverage import is_benign_text
from .hypothesis import Hyp, give
from .index import Index, fmt_p
from .pooled import lies_apart, part_shares, plain_values
from .stats import binom_sf


# ---- 6. co-occurrence
def cooccur(ix: Index, hyps: list[Hyp], owner: dict[int, int]) -> None:
    S = ix.S
    if not hyps:
        return
    times: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for i, hi in owner.items():
        times[ix.ev[i].job_id].append((ix.ev[i].time, hi))
    for j in times:
        times[j].sort()
    tkeys = {j: [t for t, _ in v] for j, v in times.items()}
    for s in sorted(ix.by_sig):
        if is_benign_text(ix, s):
            continue  # benign lines sit next to everything; coverage decides whether they matter
        left = [i for i in ix.by_sig[s] if i not in owner and i not in ix.in_storm]
        if not left:
            continue
        occs: dict[int, list[int]] = defaultdict(list)
        for i in left:
            occs[ix.occ[i]].append(i)
        if len(occs) < 3:
            continue
        votes: Counter = Counter()
        near_of: dict[int, set[int]] = {}
        for o, ii in occs.items():
            e = ix.ev[ii[0]]
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
        if not ix.apart_allows(hyps[h].sigs | {s}):
            continue
        # only the occurrences that sit next to it; the rest stay unexplained
        ids = [i for o, ii in occs.items() if h in near_of.get(o, ()) for i in ii]
        give(
            hyps,
            owner,
            h,
            s,
            ids,
            f"{ix.sig_title(s)}: {v} of {len(occs)} occurrences within "
            f"{int(S.cooccur_window_s)} s of this cause's other events in the same job",
        )


def join_followers(ix: Index, hyps: list[Hyp], owner: dict[int, int]) -> dict[int, int]:
    """The launcher's word on a failure belongs to that failure, line by line. A follower text (one
    whose lines mostly come right after another text's in the same job: "child process failed")
    has each leftover line join the hypothesis holding the lines it follows, when those are all
    one hypothesis's and it holds them by place (a host, a GPU, a storm, a bad step): a
    regression holds its rarer lines by versions, a guess line by line, and a follower would only
    repeat the guess. A line after lines nothing explains yet follows their text into coverage
    (returned: event -> the signature it follows)."""
    S = ix.S
    follow: dict[int, int] = {}
    for s in sorted(ix.by_sig):
        if s in ix.routine:
            continue
        left = [i for i in ix.by_sig[s] if i not in owner and i not in ix.in_storm]
        if not left:
            continue
        firsts = ix.occurrence_firsts(ix.by_sig[s])
        if sum(1 for i in firsts.values() if ix.follows_other(i)) < S.pool_follower_frac * len(firsts):
            continue  # a text that opens its failures: coverage or another rule decides
        per_h: dict[int, list[int]] = defaultdict(list)
        for i in left:
            leads = ix.lines_before(i)
            holders = {owner.get(j) for j in leads}
            if len(holders) != 1:
                continue  # after nothing, or after lines of several causes: no one failure to join
            (h,) = holders
            if h is not None:
                per_h[h].append(i)
            elif len(lead_sigs := {ix.ev[j].signature_id for j in leads}) == 1:
                (follow[i],) = lead_sigs
        for h, ids in sorted(per_h.items()):
            if regression_keys(hyps[h]) or not ix.apart_allows(hyps[h].sigs | {s}):
                continue
            give(
                hyps,
                owner,
                h,
                s,
                ids,
                f"{ix.sig_title(s)}: {len(ids)} line{'s' if len(ids) > 1 else ''} right after this cause's own "
                f"in the same job (within {int(S.episode_gap_s)} s): what followed that failure",
            )
    return follow


# ---- 6b. co-occurrence in version space: inside a regression's scope
def scope_value(code: str | None, vers: tuple[tuple[str, str], ...], d: str) -> str | None:
    """The value of version dimension ``d`` (``code_version``, a name, or a pair ``a×b`` whose
    values read ``va with b vb``) for one version set."""
    if d == "code_version":
        return code
    if "×" in d:
        a, b = d.split("×", 1)
        va, vb = scope_value(code, vers, a), scope_value(code, vers, b)
        return None if va is None or vb is None else f"{va} with {b} {vb}"
    for name, v in vers:
        if name == d:
            return v
    return None


def in_scope(code: str | None, vers: tuple[tuple[str, str], ...], keys) -> bool:
    """Inside every one of the onset keys ``(d, A)`` (a hypothesis' regressions overlap: the bug
    sits where they all hold)."""
    return all(scope_value(code, vers, d) in A for d, A in keys)


def regression_keys(h: Hyp) -> list[tuple[str, tuple[str, ...]]]:
    out: list[tuple[str, tuple[str, ...]]] = []
    for c in h.comps:
        if c.kind == "regression" and c.key[0] == "onset" and (c.key[1], c.key[2]) not in out:
            out.append((c.key[1], c.key[2]))
    return out


def support_keys(ix: Index, h: Hyp) -> list[tuple[str, tuple[str, ...]]]:
    """Where the regression's own occurrences ran: per version dimension (not the code version, which
    names a run more than a release), the values that hold (nearly) all of them, when that leaves
    some of the fleet's values out. A bug active under one torch x CUDA pair claimed "since cuda
    12.6" is still seen under torch 2.5.1 only: a rarer text is weighed against that."""
    S = ix.S
    firsts = ix.occurrence_firsts(h.events)
    n = len(firsts)
    if n < S.min_onset:
        return []
    fleet_vals: dict[str, set[str]] = defaultdict(set)
    for _j, _code, vers, _x in ix.expo.segments:
        for name, v in vers:
            fleet_vals[name].add(v)
    seen: dict[str, Counter] = defaultdict(Counter)
    for i in firsts.values():
        for name, v in ix.ev[i].versions:
            seen[name][v] += 1
    out: list[tuple[str, tuple[str, ...]]] = []
    for name in sorted(seen):
        keep: list[str] = []
        covered = 0
        for v, c in seen[name].most_common():
            if covered >= (1 - S.onset_stray_frac) * n:
                break
            keep.append(v)
            covered += c
        if covered >= (1 - S.onset_stray_frac) * n and len(keep) < len(fleet_vals[name]):
            out.append((name, tuple(sorted(keep))))
    return out


def scope_share(ix: Index, keys) -> float:
    """Share of all exposure (steps) run inside the scope."""
    tot = inside = 0.0
    for _j, code, vers, x in ix.expo.segments:
        tot += x
        if in_scope(code, vers, keys):
            inside += x
    return inside / tot if tot > 0 else 1.0


def _second_cause(ix: Index, h: Hyp, keys, firsts: list[int]) -> bool:
    """Whether a text's lines, all inside the regression's versions, lie apart in one part of them
    the regression's own lines avoid (``pooled.lies_apart``): a second cause rolled out with it."""
    occ_first = ix.occurrence_firsts(h.events)
    others = [plain_values(ix.ev[i].code_version, ix.ev[i].versions) for i in occ_first.values()]
    ovs = [plain_values(ix.ev[i].code_version, ix.ev[i].versions) for i in firsts]
    shares = part_shares(ix, lambda code, vers: in_scope(code, vers, keys), plain_values)
    return (
        lies_apart(ix, ovs=ovs, n_jobs=len({ix.ev[i].job_id for i in firsts}), others=others, shares=shares) is not None
    )


def join_scope(ix: Index, hyps: list[Hyp], owner: dict[int, int]) -> None:
    """A software regression's rarer symptoms: a leftover text a code bug can show as (software,
    unknown or data meaning; not benign-sounding, not a scheduler's line about the whole job, not
    mostly just before storms) joins the regression with its occurrences inside the regression's
    version scope when they lie there far more often than the steps run there would give (binomial
    tail at the scope's share of exposure, ``alpha_scope_join`` corrected for the regressions tried;
    its rate outside at most ``scope_join_rate_ratio`` of inside), or when every occurrence is
    inside a scope that ran little (share ** n <= ``scope_join_rare_share``: a line too rare for any
    test that nothing else claimed). Only occurrences that open their failure are weighed: a line
    right after another text's belongs to that failure (incidents, coverage)."""
    from .coverage import is_job_level_text, is_scheduler_text

    S = ix.S
    regs = [
        (hi, keys + [k for k in support_keys(ix, h) if k not in keys])
        for hi, h in enumerate(hyps)
        if h.events and not h.incident and (keys := regression_keys(h))
    ]
    if not regs:
        return
    share = {hi: scope_share(ix, keys) for hi, keys in regs}
    before_storm = ix.just_before_storm

    cand: dict[int, dict[int, list[int]]] = {}
    for s in sorted(ix.by_sig):
        if ix.sig_class(s) not in S.pool_classes or is_benign_text(ix, s) or is_job_level_text(ix, s):
            continue
        if is_scheduler_text(ix, s):
            continue  # the scheduler's word on how a job ended is no symptom of what broke it
        left = [i for i in ix.by_sig[s] if i not in owner and i not in ix.in_storm]
        if not left:
            continue
        occs: dict[int, list[int]] = defaultdict(list)
        for i in left:
            occs[ix.occ[i]].append(i)
        # a line that comes just before storms is their precursor (precedence.py weighs it), not a symptom
        if sum(1 for ii in occs.values() if before_storm(ii[0])) >= S.pool_precursor_frac * len(occs):
            continue
        # a bug's line opens its failure; a line right after another text's (the launcher's "child
        # failed", a bad GPU's CUDA error after its Xid) follows that failure, whatever its versions:
        # only the occurrences that open their failure are weighed (one text may have two causes)
        occs = {o: ii for o, ii in occs.items() if not ix.follows_other(ii[0])}
        if not occs:
            continue
        cand[s] = occs
    # each text is its own question (a wrong answer moves its lines from "cause not yet known" to a
    # regression, no new claim): corrected for the regressions it is tried against
    n_tests = max(1, len(regs))
    if not cand:
        return
    for s, occs in sorted(cand.items()):
        # only one process's lines: an occurrence on several hosts at once is a collective's (NCCL
        # failing to connect, a hang), which the storm and host rules place; a bug's rarer symptom
        # is one rank's error. A regression whose versions hold one takes none of the text's lines.
        collective = {o for o, ii in occs.items() if len({ix.ev[i].host for i in ii}) > 1}
        # one text, two regressions: what the best one leaves is tried against the others
        tried: set[int] = set()
        while occs:
            best = None
            for hi, keys in regs:
                if hi in tried:
                    continue
                q = share[hi]
                if q <= 0 or q >= 1:
                    continue
                inside = [
                    o for o, ii in occs.items() if in_scope(ix.ev[ii[0]].code_version, ix.ev[ii[0]].versions, keys)
                ]
                k, n = len(inside), len(occs)
                if k == 0:
                    continue
                # the text's rate outside these versions, as a share of its rate inside
                ratio = (n - k) / (1.0 - q) / (k / q)
                if collective.intersection(inside):
                    continue
                likely = S.scope_join_likely_min <= k < n and ratio < S.scope_join_likely_ratio
                if k < S.scope_join_min_test and k < n and not likely:
                    continue
                p = min(1.0, binom_sf(k, n, q) * n_tests)
                every = k == n and q**n <= S.scope_join_rare_share
                if p < S.alpha_scope_join or every:
                    likely = False
                    # nearly absent outside: a line every failure brings (the launcher's "child
                    # failed") is only more frequent where the bug adds failures, and stays with its
                    # own causes
                    if ratio > S.scope_join_rate_ratio:
                        continue
                elif not likely:
                    continue
                if not ix.apart_allows(hyps[hi].sigs | {s}):
                    continue
                if k == n and _second_cause(ix, hyps[hi], keys, [occs[o][0] for o in inside]):
                    continue
                if best is None or (likely, p, q, hi) < best[:4]:
                    best = (likely, p, q, hi, inside, k, n, ratio)
            if best is None:
                break
            likely, p, q, hi, inside, k, n, ratio = best
            tried.add(hi)
            ids = [i for o in inside for i in occs[o]]
            give(
                hyps,
                owner,
                hi,
                s,
                ids,
                f"{ix.sig_title(s)}: {k} of {n} occurrences inside this regression's versions, which ran "
                f"{q:.0%} of the steps"
                + (
                    f": {1 / ratio:.1f}x its rate elsewhere, too few for a test (p={p:.2f}); most likely this "
                    "regression's, as nothing else explains them"
                    if likely
                    else f" ({fmt_p(p)})"
                    if p < S.alpha_scope_join
                    else ": all of them, and nothing else explains them"
                ),
            )
            taken = set(inside)
            occs = {o: ii for o, ii in occs.items() if o not in taken}


def split_by_rate(ix: Index, hyps: list[Hyp], owner: dict[int, int]) -> None:
    """One text claimed by one regression (A) whose lines come far more often inside another
    regression's versions (B) than the steps run there, within A's versions, would give (binomial
    tail, ``alpha_onset`` corrected for the pairs and texts tried), while A's other texts show no
    such excess there: B's bug shows as that text
    too, and the lines inside B's versions go to B. Those lines cannot be told apart one by one; the
    excess says most of them are B's, and the evidence line says how many were moved and why."""
    S = ix.S
    regs = [(hi, keys) for hi, h in enumerate(hyps) if h.events and not h.incident and (keys := regression_keys(h))]
    if len(regs) < 2:
        return
    plans: list[tuple[float, int, int, int, list[int], str]] = []
    n_tests = 0
    for a, keys_a in regs:
        segs_a = [(code, vers, x) for _j, code, vers, x in ix.expo.segments if in_scope(code, vers, keys_a)]
        inside_a = sum(x for _c, _v, x in segs_a)
        for b, keys_b in regs:
            if a == b or len(hyps[b].sigs) < 2:
                continue  # B must be a bug in its own right, with other texts of its own
            both = sum(x for code, vers, x in segs_a if in_scope(code, vers, keys_b))
            if inside_a <= 0 or not 0 < both < (1 - S.onset_stray_frac) * inside_a:
                continue
            q = both / inside_a
            for s in sorted(hyps[a].sigs):
                if s in hyps[b].sigs and len(hyps[a].sigs) > 1:
                    continue
                firsts = ix.occurrence_firsts(hyps[a].sig_events[s])
                n = len(firsts)
                inside = [o for o, i in firsts.items() if in_scope(ix.ev[i].code_version, ix.ev[i].versions, keys_b)]
                k = len(inside)
                if k < S.scope_join_min_test or k == n:
                    continue  # all of it inside both: nothing tells whose it is
                # A's other texts must not show the same excess there: else the versions stand for
                # something A's bug itself follows (a torch used mostly with the later code)
                o_first = ix.occurrence_firsts(i for s2 in sorted(hyps[a].sigs - {s}) for i in hyps[a].sig_events[s2])
                n_o = len(o_first)
                k_o = sum(1 for i in o_first.values() if in_scope(ix.ev[i].code_version, ix.ev[i].versions, keys_b))
                if n_o < S.scope_join_min_test or binom_sf(k_o, n_o, q) < S.alpha_scope_join:
                    continue
                n_tests += 1
                p = binom_sf(k, n, q)
                inside_set = set(inside)
                ids = [i for i in hyps[a].sig_events[s] if ix.occ[i] in inside_set]
                line = (
                    f"{ix.sig_title(s)}: {k} of its {n} occurrences lie inside this regression's versions, "
                    f"which ran {q:.0%} of the steps of the other regression that also shows it"
                )
                plans.append((p, a, b, s, ids, line))
    done: set[int] = set()
    for p, a, b, s, ids, line in sorted(plans, key=lambda t: (t[0], t[1], t[2], t[3])):
        p = min(1.0, p * max(1, n_tests))
        if p >= S.alpha_split_rate or s in done:
            continue
        done.add(s)
        hyps[a].remove_events(s, ids)
        give(hyps, owner, b, s, ids, f"{line} ({fmt_p(p)}): this bug shows as that text too")
