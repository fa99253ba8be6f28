"""Rule 5, merging: components with one evidence profile become one hypothesis (one bug, many
symptoms); people's together/apart decisions are obeyed here."""

from __future__ import annotations

import itertools
from collections import defaultdict

from .cooccurrence import in_scope
from .hypothesis import Hyp, give
from .index import Index


class UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x


# ---- 5. merge into hypotheses
def merge(ix: Index) -> list[list[int]]:
    comps = ix.components
    uf = UnionFind(len(comps))
    sigsets = [{c.sig} for c in comps]

    def apart_ok(a: int, b: int) -> bool:
        ra, rb = uf.find(a), uf.find(b)
        both = sigsets[ra] | sigsets[rb]
        for g in ix.cons.apart:
            if len(both & g) >= 2:
                return False
        return True

    def union(a: int, b: int, force: bool = False) -> None:
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            return
        if not force and not apart_ok(a, b):
            return
        lo, hi = min(ra, rb), max(ra, rb)
        uf.parent[hi] = lo
        sigsets[lo] |= sigsets[hi]

    # human merges first
    by_sig_comp: dict[int, list[int]] = defaultdict(list)
    for ci, c in enumerate(comps):
        by_sig_comp[c.sig].append(ci)
    for g in ix.cons.together:
        members: list[int] = []
        for s in sorted(g):
            cs = by_sig_comp.get(s, [])
            if cs:
                members.append(max(cs, key=lambda ci: (len(comps[ci].events), -ci)))
        for a, b in itertools.pairwise(members):
            union(a, b, force=True)
    # same key
    first: dict[tuple, int] = {}
    for ci, c in enumerate(comps):
        k = c.key
        if k in first:
            union(first[k], ci)
        else:
            first[k] = ci
    # onsets: mutual consistency
    ons = [ci for ci, c in enumerate(comps) if c.kind == "regression"]
    for x in range(len(ons)):
        for y in range(x + 1, len(ons)):
            ca, cb = comps[ons[x]], comps[ons[y]]
            ka, kb = ca.key[1:], cb.key[1:]
            if ka == kb or (ka in cb.compat and kb in ca.compat):
                union(ons[x], ons[y])
    # onsets the events cannot tell apart: each one's occurrences (nearly all) inside the other's
    # versions. A bug's texts each pick the version dimension that fits their own few occurrences
    # best ("up to nccl 2.20.5" for one, "since transformer_engine 1.12.0" for another, the same
    # jobs ran both); as with one key, one cause is the simpler account.
    S = ix.S
    occ_vals: dict[int, list[tuple]] = {}
    for ci in ons:
        firsts = ix.occurrence_firsts(comps[ci].events)
        occ_vals[ci] = [(ix.ev[i].code_version, ix.ev[i].versions) for i in firsts.values()]

    def inside(ci: int, key: tuple, frac: float | None = None) -> bool:
        vs = occ_vals[ci]
        n_in = sum(1 for code, vers in vs if in_scope(code, vers, [key]))
        return bool(vs) and len(vs) - n_in <= (S.scope_merge_stray_frac if frac is None else frac) * len(vs)

    for x in range(len(ons)):
        for y in range(x + 1, len(ons)):
            a, b = ons[x], ons[y]
            if uf.find(a) == uf.find(b) or comps[a].key[0] != "onset" or comps[b].key[0] != "onset":
                continue
            ka, kb = comps[a].key[1:], comps[b].key[1:]
            if (inside(a, kb) and inside(b, ka)) or (
                # one wholly inside the other's versions, the other mostly inside the first's
                (inside(a, kb, 0.0) and inside(b, ka, S.scope_merge_nested_frac))
                or (inside(b, ka, 0.0) and inside(a, kb, S.scope_merge_nested_frac))
            ):
                union(a, b)
    groups: dict[int, list[int]] = defaultdict(list)
    for ci in range(len(comps)):
        groups[uf.find(ci)].append(ci)
    return [groups[r] for r in sorted(groups)]


# ---- human merges without evidence
def human_only(ix: Index, hyps: list[Hyp], owner: dict[int, int]) -> None:
    for g in ix.cons.together:
        present = [s for s in sorted(g) if ix.by_sig.get(s)]
        if len(present) < 2:
            continue
        owners = {o for s in present for i in ix.by_sig[s] if (o := owner.get(i)) is not None}
        if owners:
            # fold unexplained events of the group into the largest hypothesis that holds any of it
            h = min(owners, key=lambda x: (-len(hyps[x].events), x))
        else:
            h = len(hyps)
            hyps.append(Hyp(ix, [], human=True))
        for s in present:
            ids = [i for i in ix.by_sig[s] if i not in owner]
            if ids:
                give(hyps, owner, h, s, ids, None)
        hyps[h].lines_extra.append(
            "people merged " + ", ".join(f"'{ix.sig_title(s)}'" for s in present) + " into one cause"
        )
