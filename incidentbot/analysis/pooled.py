"""Rule 4b, pooled onset: one bug, many small symptoms.

A bug that fires rarely shows as several texts, none with enough occurrences for an onset of its
own. Pooled here: for each candidate version set (since / until / only one value of a version
dimension, and only one value of a PAIR of dimensions, e.g. torch 2.3.0 with cuda 12.6), the
signatures left over by the other rules whose occurrences all sit inside it (at least
``pool_min_per_sig`` each, at least ``pool_min_sigs`` texts) are tested together: P(none outside
| their pooled rate x the steps outside), Bonferroni over every candidate set. A
pair is tried only where it beats each of its single dimensions (the clean steps of another
torch on the same CUDA are then not counted against the claim).

A version set that stands for one cluster (all its exposure is there and the cluster ran little
else) is not claimed as a regression: the cluster could as well be the cause.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

from .coverage import is_scheduler_text
from .index import Component, Index, fmt_n, fmt_p
from .versions import version_key


def _values(code, vers, pairs) -> dict[str, str]:
    vd = dict(vers)
    if code is not None:
        vd["code_version"] = code
    for a, b in pairs:
        if a in vd and b in vd:
            vd[f"{a}×{b}"] = f"{vd[a]} with {b} {vd[b]}"
    return vd


def plain_values(code, vers) -> dict[str, str]:
    """Each dimension's value (code_version among them), no pairs."""
    return _values(code, vers, ())


def stands_for_cluster(ix: Index, d: str, A: tuple[str, ...], exposure_of) -> str | None:
    """The cluster a version set stands for: all of its exposure in one cluster, which ran
    (nearly) nothing else."""
    S = ix.S
    in_c: dict[str, float] = defaultdict(float)
    all_c: dict[str, float] = defaultdict(float)
    for j, code, vers, x in ix.expo.segments:
        c = ix.job_cluster.get(j)
        if c is None:
            continue
        all_c[c] += x
        if exposure_of(code, vers).get(d) in A:
            in_c[c] += x
    if len(in_c) != 1 or len(all_c) < 2:
        return None
    ((c, x),) = in_c.items()
    return c if x >= (1 - S.onset_stray_frac) * all_c[c] else None


def _best(cands, E, occ_vals, taken, n_tests, S, apart):
    best = None
    for mode, d, A in cands:
        out = apart.get((d, A), ())
        Aset = set(A)
        E_tot = sum(E[d].values())
        E_in = sum(E[d][v] for v in A)
        E_out = E_tot - E_in
        if E_out <= 0 or E_tot <= 0:
            continue
        members = []
        n_in = 0
        for s, ovs in occ_vals.items():
            if s in taken or s in out:
                continue
            k_in = sum(1 for ov in ovs if ov.get(d) in Aset)
            if k_in == len(ovs):
                members.append(s)
                n_in += k_in
        if len(members) < S.pool_min_sigs:
            continue
        mu = n_in * E_out / E_in  # expected outside at the rate seen inside
        p = min(1.0, math.exp(-mu) * n_tests)
        if best is None or (p, -len(members)) < (best[0], -len(best[4])):
            best = (p, mode, d, A, members, n_in, E_in, E_out, mu)
    return best


def too_broad(ix: Index, best, occ_vals, vals_of) -> bool:
    """Whether a part of the onset's versions that ran long (another dimension's value inside it,
    e.g. torch 2.2.2 on cuda 12.6) shows none of it: then a pair of dimensions is the better claim."""
    _p, _mode, d, A, members, n_in, E_in, _E_out, _mu = best
    Aset = set(A)
    E_sub: dict[tuple[str, str], float] = defaultdict(float)
    for _j, code, vers, x in ix.expo.segments:
        vd = vals_of(code, vers)
        if vd.get(d) in Aset:
            for d2, v2 in vd.items():
                if d2 != d and "×" not in d2:
                    E_sub[(d2, v2)] += x
    n_sub: dict[tuple[str, str], int] = defaultdict(int)
    for s in members:
        for ov in occ_vals[s]:
            for d2, v2 in ov.items():
                if d2 != d and "×" not in d2:
                    n_sub[(d2, v2)] += 1
    for key, x in E_sub.items():
        if n_sub.get(key, 0) == 0 and math.exp(-n_in * x / E_in) < ix.S.onset_broad_p:
            return True
    return False


def part_shares(ix: Index, inside, vals_of) -> dict[tuple[str, str], float]:
    """Share of the steps run inside a version set (``inside(code, vers)``) that each value of
    every dimension ran (nccl 2.21.5: 0.4 of torch 2.3.0's steps)."""
    E_in = 0.0
    E_sub: dict[tuple[str, str], float] = defaultdict(float)
    for _j, code, vers, x in ix.expo.segments:
        if inside(code, vers):
            E_in += x
            for d2, v2 in vals_of(code, vers).items():
                if "×" not in d2:
                    E_sub[(d2, v2)] += x
    return {kv: x / E_in for kv, x in E_sub.items()} if E_in > 0 else {}


def lies_apart(
    ix: Index,
    *,
    ovs: list[dict[str, str]],
    n_jobs: int,
    others: list[dict[str, str]],
    shares,
    skip=(),
    n_tests: int = 1,
) -> tuple[str, str] | None:
    """The value (nccl 2.21.5) of one part of a regression's versions that every line of a text
    sits in while the regression's other lines, and the steps run, mostly do not: then the text
    is a second cause that rolled out with the first, not one more symptom of it. P(all n of its
    lines there | the larger of the others' share there and the steps' share) below
    ``alpha_onset``, corrected for ``n_tests`` and the values tried. A text seen in too few
    lines or jobs is not weighed (one job's lines share all its versions), nor a value the whole
    set ran."""
    S = ix.S
    if len(ovs) < S.pool_apart_min or n_jobs < S.pool_apart_min_jobs or not others:
        return None
    common = {(d2, v2) for d2, v2 in ovs[0].items() if d2 not in skip and "×" not in d2}
    for ov in ovs[1:]:
        common = {kv for kv in common if ov.get(kv[0]) == kv[1]}
    tried = [kv for kv in sorted(common) if shares.get(kv, 0.0) < 1 - S.onset_stray_frac]
    for d2, v2 in tried:
        k_r = sum(1 for ov in others if ov.get(d2) == v2)
        if len(others) - k_r < S.pool_apart_min_rest:
            continue  # the others lie there too: nothing tells the two apart
        share = max((k_r + 1) / (len(others) + 2), shares.get((d2, v2), 0.0))
        if share ** len(ovs) * n_tests * len(tried) < S.alpha_onset:
            return d2, v2
    return None


def narrower_members(ix: Index, best, occ_vals, occ_jobs, vals_of) -> set[int]:
    """Members of a pooled onset that lie apart in one part of its versions (``lies_apart``)."""
    _p, _mode, d, A, members, _n_in, _E_in, _E_out, _mu = best
    Aset = set(A)
    shares = part_shares(ix, lambda code, vers: vals_of(code, vers).get(d) in Aset, vals_of)
    return {
        s
        for s in members
        if lies_apart(
            ix,
            ovs=occ_vals[s],
            n_jobs=len(occ_jobs[s]),
            others=[ov for m in members if m != s for ov in occ_vals[m]],
            shares=shares,
            skip=(d,),
            n_tests=len(members),
        )
    }


def inside_known(ix: Index, best, occ_vals, known, vals_of) -> set[int]:
    """Members of a pooled onset whose every line lies inside the versions of a regression already
    found on its own (torch 2.6.0 within the pool's cuda 12.6), a narrower part of the pool's: that
    regression explains them with no new cause (its rarer symptoms join it by scope), so they are
    no evidence for this one."""
    _p, _mode, d, A, members, _n_in, _E_in, _E_out, _mu = best
    Aset = set(A)
    out: set[int] = set()
    shares: dict[tuple[str, str], float] | None = None
    for d2, A2 in known:
        if d2 == d:
            continue
        if shares is None:  # the same for every known regression: computed once, when needed
            shares = part_shares(ix, lambda code, vers: vals_of(code, vers).get(d) in Aset, vals_of)
        if sum(shares.get((d2, v), 0.0) for v in A2) >= 1 - ix.S.onset_stray_frac:
            continue  # not narrower: the pool's versions all ran it
        out |= {s for s in members if all(ov.get(d2) in A2 for ov in occ_vals[s])}
    return out


def pooled_onset(ix: Index, left: Mapping[int, list[int]]) -> set[int]:
    """Components for groups of leftover signatures sharing one onset; returns the signatures taken."""
    S = ix.S
    taken: set[int] = set()
    names = sorted({n for (_j, _c, vers, _x) in ix.expo.segments for n, _ in vers})
    pairs = [(a, b) for k, a in enumerate(names) for b in names[k + 1 :]]
    cache: dict[tuple, dict[str, str]] = {}

    def vals_of(code, vers):
        key = (code, vers)
        v = cache.get(key)
        if v is None:
            v = cache[key] = _values(code, vers, pairs)
        return v

    E: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for _j, code, vers, x in ix.expo.segments:
        for d, v in vals_of(code, vers).items():
            E[d][v] += x
    # a text that mostly comes just before storms is their precursor, not a symptom
    before_storm = ix.just_before_storm

    # occurrences per signature and value
    occ_vals: dict[int, list[dict[str, str]]] = {}
    opening: dict[int, set[int]] = {}
    occ_jobs: dict[int, set[str]] = {}
    for s, idx in left.items():
        if ix.sig_class(s) not in S.pool_classes:
            continue  # a text that itself means hardware, network or storage is no code bug's symptom
        if is_scheduler_text(ix, s):
            continue  # nor is the scheduler's line on how a job ended
        firsts = ix.occurrence_firsts(idx)
        # a bug's line opens its failure; a text that mostly comes right after another text's line
        # follows those failures (the launcher's "child failed" after any crash), whatever versions
        # they ran on: only its lines that open a failure are weighed (a text that now and then
        # comes after a frequent one by chance keeps them all)
        openers = {o: i for o, i in firsts.items() if not ix.follows_other(i)}
        if len(openers) < (1 - S.pool_follower_frac) * len(firsts):
            firsts = openers
        opening[s] = set(firsts)
        if len(firsts) < S.pool_min_per_sig:
            continue
        if sum(1 for i in firsts.values() if before_storm(i)) >= S.pool_precursor_frac * len(firsts):
            continue
        occ_vals[s] = [vals_of(ix.ev[i].code_version, ix.ev[i].versions) for i in firsts.values()]
        occ_jobs[s] = {ix.ev[i].job_id for i in firsts.values()}
    if len(occ_vals) < S.pool_min_sigs:
        return taken
    cands: list[tuple[str, str, tuple[str, ...]]] = []
    for d in sorted(E):
        vs = sorted(E[d], key=version_key)
        if len(vs) < 2:
            continue
        if "×" in d:
            cands += [("only", d, (v,)) for v in vs]
        else:
            for k in range(1, len(vs)):
                cands.append(("since", d, tuple(vs[k:])))
                cands.append(("until", d, tuple(vs[:k])))
            if len(vs) >= 3:
                cands += [("only", d, (v,)) for v in vs]
    n_tests = max(1, len(cands))
    # regressions found on their own so far (one text each, enough lines for an onset)
    known = sorted({(c.key[1], c.key[2]) for c in ix.components if c.kind == "regression" and c.key[0] == "onset"})
    apart: dict[tuple, set[int]] = {}  # per candidate: members set apart (narrower_members, inside_known)
    while True:
        # single dimensions first; a pair only where no single dimension explains it
        best = _best([c for c in cands if "×" not in c[1]], E, occ_vals, taken, n_tests, S, apart)
        if best is not None and best[0] < S.alpha_onset and too_broad(ix, best, occ_vals, vals_of):
            pair = _best([c for c in cands if "×" in c[1]], E, occ_vals, taken, n_tests, S, apart)
            if pair is not None and pair[0] < S.alpha_onset:
                best = pair
        if best is None or best[0] >= S.alpha_onset:
            best = _best([c for c in cands if "×" in c[1]], E, occ_vals, taken, n_tests, S, apart)
        if best is None or best[0] >= S.alpha_onset:
            return taken
        p, mode, d, A, members, n_in, E_in, E_out, mu = best
        narrow = narrower_members(ix, best, occ_vals, occ_jobs, vals_of) | inside_known(
            ix, best, occ_vals, known, vals_of
        )
        if narrow:
            apart.setdefault((d, A), set()).update(narrow)
            continue
        if stands_for_cluster(ix, d, A, vals_of) is not None:
            # the version is one cluster's: no regression claim (coverage keeps the events)
            cands = [c for c in cands if (c[1], c[2]) != (d, A)]
            continue
        dn = "code" if d == "code_version" else d
        shown = ", ".join(A)
        where = {
            "since": f"since {dn} {A[0]}",
            "until": f"up to {dn} {A[-1]} (gone after)",
            "only": f"only on {dn} {shown}" if "×" not in d else f"only on {d.split('×')[0]} {shown}",
        }[mode]
        if "×" in d:
            a, b = d.split("×")
            versions = []
            for v in A:
                va, vb = v.split(f" with {b} ")
                versions += [f"{a}={va}", f"{b}={vb}"]
        else:
            versions = [f"{d}={v}" for v in A]
        titles = ", ".join(f"'{ix.sig_title(s)}'" for s in members[:5])
        pooled_line = (
            f"{len(members)} symptoms too rare for an onset each ({titles}): {n_in} occurrences "
            f"together, all {where.replace('only on ', 'on ')}; 0 in {fmt_n(E_out)} steps elsewhere "
            f"({mu:.1f} expected at their pooled rate; {fmt_p(p)})"
        )
        member_set = set(members)
        for s in members:
            A_key = (d, A)
            # its lines that open a failure, and those right after another symptom's line (the bug
            # firing two texts at once); not those after some other text's (another cause's failure)
            idx = [i for i in left[s] if ix.occ[i] in opening[s] or ix.texts_before(i) & member_set]
            ev = [pooled_line] if s == members[0] else []
            ix.add(
                Component(
                    s,
                    "regression",
                    ("onset",) + A_key,
                    list(idx),
                    p,
                    ev,
                    {"versions": versions},
                    compat=frozenset({A_key}),
                    cause_class="software",
                    label=where,
                )
            )
            taken.add(s)
