"""Rule 4, onset: occurrences present on some versions and absent on others that ran long enough."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping

from .index import Component, Index, fmt_n, fmt_p
from .pooled import plain_values, stands_for_cluster
from .stats import poisson_cdf
from .versions import version_key


# ---- 4. onset
def onset(ix: Index, s: int, idx: list[int]) -> list[int]:
    S = ix.S
    occ_first = ix.occurrence_firsts(idx)
    n_tot = len(occ_first)
    if n_tot < S.min_onset:
        return idx
    # dimensions and value of each occurrence
    dims: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    for _j, code, vers, x in ix.expo.segments:
        if code is not None:
            dims["code_version"][code][0] += x
        for name, v in vers:
            dims[name][v][0] += x
    occ_val: dict[str, list[str | None]] = defaultdict(list)
    for _o, i in sorted(occ_first.items()):
        e = ix.ev[i]
        vd = dict(e.versions)
        for d in dims:
            v = e.code_version if d == "code_version" else vd.get(d)
            occ_val[d].append(v)
            if v is not None and v in dims[d]:
                dims[d][v][1] += 1
    tests: list[tuple[float, str, tuple[str, ...], dict]] = []
    n_cands = 0
    for d in sorted(dims):
        vals = sorted(dims[d], key=version_key)
        if len(vals) < 2:
            continue
        E_tot = sum(dims[d][v][0] for v in vals)
        n_d = sum(dims[d][v][1] for v in vals)
        if n_d < S.min_onset or E_tot <= 0:
            continue
        cand_sets: list[tuple[str, tuple[str, ...]]] = []
        for k in range(1, len(vals)):
            cand_sets.append(("since", tuple(vals[k:])))
            cand_sets.append(("until", tuple(vals[:k])))
        if len(vals) >= 3:
            for v in vals:
                cand_sets.append(("only", (v,)))
        seen = set()
        for mode, A in cand_sets:
            if A in seen:
                continue
            seen.add(A)
            n_cands += 1
            Aset = set(A)
            E_in = sum(dims[d][v][0] for v in A)
            n_in = sum(dims[d][v][1] for v in A)
            E_out = E_tot - E_in
            n_out = n_d - n_in
            if E_out <= 0 or n_in <= 0 or n_out > S.onset_stray_frac * n_d:
                continue
            mu = n_d * E_out / E_tot
            if n_out > S.onset_stray_of_expected * mu:
                continue  # present there too, only less often: a rate difference, not an onset
            p = poisson_cdf(int(n_out), mu)  # a count (kept beside a float exposure, so typed float)
            # every version inside A that ran long enough must show it too
            ok = True
            for v in A:
                Ev, nv = dims[d][v]
                if nv == 0 and math.exp(-n_in * Ev / E_in) < 0.01:
                    ok = False
                    break
            if not ok:
                continue
            tests.append(
                (
                    p,
                    d,
                    A,
                    {
                        "mode": mode,
                        "E_in": E_in,
                        "E_out": E_out,
                        "n_in": n_in,
                        "n_out": n_out,
                        "mu": mu,
                        "out": tuple(v for v in vals if v not in Aset),
                        "n_d": n_d,
                    },
                )
            )
    if not tests:
        return idx
    tests = [(min(1.0, p * n_cands), d, A, info) for p, d, A, info in tests]
    tests.sort(key=lambda t: (t[0], t[1], t[2]))
    # a version that stands for one cluster (all of its steps there, the cluster ran little else)
    # is no regression: the cluster could as well be the cause; only a claim holding within a
    # cluster is kept
    tests = [t for t in tests if stands_for_cluster(ix, t[1], t[2], plain_values) is None]
    if not tests:
        return idx
    best_p, d, A, info = tests[0]
    if best_p >= S.alpha_onset:
        return idx
    compat = frozenset((d2, A2) for p2, d2, A2, _ in tests if p2 < S.alpha_onset)
    # the same partition of exposure under another name (code v1.4 always with torch 2.3.0): say both
    confounded = [(d2, A2) for p2, d2, A2, _ in tests if p2 <= best_p * 1.0001 and (d2, A2) != (d, A)]
    Aset = set(A)
    take: list[int] = []
    keep: list[int] = []
    vd_cache: dict[tuple[tuple[str, str], ...], str] = {}
    for i in idx:
        e = ix.ev[i]
        if d == "code_version":
            v = e.code_version
        else:
            v = vd_cache.get(e.versions)
            if v is None:
                v = dict(e.versions).get(d, "")
                vd_cache[e.versions] = v
        (take if v in Aset else keep).append(i)
    dn = "code" if d == "code_version" else d
    versions = [f"{d}={v}" for v in A]
    for d2, A2 in confounded:
        versions += [f"{d2}={v}" for v in A2]
    unit = "steps"
    out_txt = ", ".join(info["out"])
    mode = info["mode"]
    where = {
        "since": f"since {dn} {A[0]}",
        "until": f"up to {dn} {A[-1]} (gone after)",
        "only": f"only on {dn} {A[0]}",
    }[mode]
    hosts = Counter(ix.ev[i].host for i in take if ix.ev[i].host is not None)
    top_share = (hosts.most_common(1)[0][1] / sum(hosts.values())) if hosts else 0.0
    jobs_in = len({ix.ev[i].job_id for i in take})
    ranks = [ix.ev[i].rank for i in take if ix.ev[i].rank is not None]
    rank0 = bool(ranks) and sum(1 for r in ranks if r == 0) >= S.rank0_frac * len(ranks)
    ev = [
        f"{ix.sig_title(s)}: {info['n_out']} occurrences in {fmt_n(info['E_out'])} {unit} on {dn} {out_txt} "
        f"({info['mu']:.1f} expected at the rate seen elsewhere); {info['n_in']} in "
        f"{fmt_n(info['E_in'])} {unit} on {dn} {', '.join(A)} ({fmt_p(best_p)})",
        f"{ix.sig_title(s)}: seen in {jobs_in} jobs, "
        + (
            "logged by rank 0 only (so where it shows says nothing about where it happens)"
            if rank0
            else f"on {len(hosts)} hosts, no host above {top_share:.0%}"
        ),
    ]
    if confounded:
        ev.append(
            "cannot tell apart from "
            + ", ".join(f"{d2} {'/'.join(A2)}" for d2, A2 in confounded)
            + " (the same jobs ran both)"
        )
    ix.add(
        Component(
            s,
            "regression",
            ("onset", d, A),
            take,
            best_p,
            ev,
            {"versions": versions},
            compat=compat,
            cause_class="software",
            label=where,
        )
    )
    return keep


def onset_split(
    ix: Index, s: int, idx: list[int], keys: list[tuple[str, tuple[str, ...]]], labels: Mapping[tuple, str]
) -> None:
    S = ix.S
    occ_first = ix.occurrence_firsts(idx)
    n = len(occ_first)
    if n < S.min_onset:
        return

    def val(code, vers, d):
        if d == "code_version":
            return code
        for name, v in vers:
            if name == d:
                return v
        return None

    def which(code, vers, chosen):
        for ki, (d, A) in enumerate(chosen):
            if val(code, vers, d) in A:
                return ki
        return -1

    chosen: list[tuple[str, tuple[str, ...]]] = []
    for d, A in keys:
        inside = sum(
            1
            for i in occ_first.values()
            if which(ix.ev[i].code_version, ix.ev[i].versions, chosen) < 0
            and val(ix.ev[i].code_version, ix.ev[i].versions, d) in A
        )
        if inside >= 2:
            chosen.append((d, A))
    if len(chosen) < 2:
        return
    # where two onsets overlap (jobs on both), give the events to the one with the higher rate
    # where it is alone: the likelier source of any one event there
    rate: dict[int, float] = {}
    for ki, (d, A) in enumerate(chosen):
        others = [c for kj, c in enumerate(chosen) if kj != ki]
        E_alone = sum(
            x for (_j, code, vers, x) in ix.expo.segments if val(code, vers, d) in A and which(code, vers, others) < 0
        )
        n_alone = sum(
            1
            for i in occ_first.values()
            if val(ix.ev[i].code_version, ix.ev[i].versions, d) in A
            and which(ix.ev[i].code_version, ix.ev[i].versions, others) < 0
        )
        rate[ki] = n_alone / E_alone if E_alone > 0 else 0.0
    chosen = [chosen[ki] for ki in sorted(rate, key=lambda k: (-rate[k], k))]
    E_tot = E_out = 0.0
    for _j, code, vers, x in ix.expo.segments:
        E_tot += x
        if which(code, vers, chosen) < 0:
            E_out += x
    n_out = sum(1 for i in occ_first.values() if which(ix.ev[i].code_version, ix.ev[i].versions, chosen) < 0)
    if E_tot <= 0 or E_out <= 0:
        return
    mu = n * E_out / E_tot
    if n_out > S.onset_stray_frac * n or n_out > S.onset_stray_of_expected * mu:
        return
    p = min(1.0, poisson_cdf(n_out, mu) * len(keys))
    if p >= S.alpha_onset:
        return
    parts: dict[int, list[int]] = defaultdict(list)
    for i in idx:
        k = which(ix.ev[i].code_version, ix.ev[i].versions, chosen)
        if k >= 0:
            parts[k].append(i)
    for k, take in sorted(parts.items()):
        d, A = chosen[k]
        dn = "code" if d == "code_version" else d
        other = "; ".join(
            f"{'code' if d2 == 'code_version' else d2} {', '.join(A2)}" for k2, (d2, A2) in enumerate(chosen) if k2 != k
        )
        ev = [
            f"{ix.sig_title(s)}: {n_out} occurrences in {fmt_n(E_out)} steps outside {dn} {', '.join(A)} "
            f"and {other} ({mu:.1f} expected); {len({ix.occ[i] for i in take})} on {dn} {', '.join(A)} "
            f"({fmt_p(p)}): one text, split between two onsets"
        ]
        ix.add(
            Component(
                s,
                "regression",
                ("onset", d, A),
                take,
                p,
                ev,
                {"versions": [f"{d}={v}" for v in A]},
                compat=frozenset({(d, A)}),
                cause_class="software",
                label=labels.get((d, A), f"on {dn} {', '.join(A)}"),
            )
        )
