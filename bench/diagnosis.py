"""Diagnosis bench: simulate -> group (signatures) -> analyze -> score against the truth.

    .venv/bin/python bench/diagnosis.py [--seeds 1,2,3] [--sizes small,medium,large] [--grouping auto|template]

Per cause (noise excluded): F1 between the cause's events and the best-matching hypothesis'
events; macro-averaged over causes. The single-bug case (the torch.sum regression, four unlike
symptoms) counts as found when one hypothesis holds all its symptoms with F1 >= 0.9. A baseline
beside it: one hypothesis per signature (what you get with grouping alone). Also times the
analysis of the large scenario (~100k events). ``score()`` is the entry point for other modes
(e.g. ingest through the HTTP API, then read ``event_id -> hypothesis_id`` back).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from incidentbot.analysis import analyze  # noqa: E402
from incidentbot.simulate import NOISE, simulate, to_records  # noqa: E402

SINGLE_BUG = "sw-torchsum"


@dataclass
class Scores:
    macro_f1: float
    per_cause: dict[str, float]
    single_bug_f1: float | None  # None when the scenario has no single-bug cause
    single_bug_found: bool
    n_hypotheses: int
    noise_absorbed: float  # share of noise events placed in some hypothesis
    details: dict[str, Any] = field(default_factory=dict)


def score(scenario_truth: Mapping[str, Any], proposals_or_event_to_hypothesis: Any,
          id_map: Mapping[int, str] | None = None) -> Scores:
    """Score hypotheses against the truth.

    ``scenario_truth``: the truth dict (``Scenario.truth`` or the parsed ``*.truth.json``).
    ``proposals_or_event_to_hypothesis``: either a mapping ``event_id (str) -> hypothesis id``
    (``None``/missing = no hypothesis), or a list of ``Proposal`` whose ``event_ids`` are ints, in
    which case ``id_map`` maps those ints back to the scenario's event_id strings.
    """
    ev_cause: Mapping[str, str] = scenario_truth["event_cause"]
    ev_tmpl: Mapping[str, str] = scenario_truth.get("event_template", {})
    if isinstance(proposals_or_event_to_hypothesis, Mapping):
        e2h = {k: v for k, v in proposals_or_event_to_hypothesis.items() if v is not None}
    else:
        e2h = {}
        for hi, p in enumerate(proposals_or_event_to_hypothesis):
            for i in p.event_ids:
                e2h[id_map[i] if id_map else i] = hi
    cause_events: dict[str, set[str]] = defaultdict(set)
    for e, c in ev_cause.items():
        cause_events[c].add(e)
    hyp_events: dict[Any, set[str]] = defaultdict(set)
    for e, h in e2h.items():
        hyp_events[h].add(e)
    per: dict[str, float] = {}
    best_h: dict[str, Any] = {}
    for c, es in sorted(cause_events.items()):
        if c == NOISE:
            continue
        inter: Counter = Counter(e2h[e] for e in es if e in e2h)
        best, bh = 0.0, None
        for h, k in inter.items():
            f1 = 2 * k / (len(es) + len(hyp_events[h]))
            if f1 > best:
                best, bh = f1, h
        per[c] = best
        best_h[c] = bh
    macro = sum(per.values()) / len(per) if per else 1.0
    sb = per.get(SINGLE_BUG)
    found = False
    if sb is not None and best_h.get(SINGLE_BUG) is not None:
        syms = {ev_tmpl.get(e) for e in cause_events[SINGLE_BUG]}
        in_h = {ev_tmpl.get(e) for e in cause_events[SINGLE_BUG] if e2h.get(e) == best_h[SINGLE_BUG]}
        found = sb >= 0.9 and syms <= in_h
    noise = cause_events.get(NOISE, set())
    absorbed = sum(1 for e in noise if e in e2h) / len(noise) if noise else 0.0
    return Scores(macro, per, sb, found, len(hyp_events), absorbed)


def calibration(scenario_truth: Mapping[str, Any], proposals, id_map: Mapping[int, str]) -> list[tuple[float, bool]]:
    """(confidence, right) per proposal: right = its events best match one cause with F1 >= 0.8 and the
    cause class agrees with the truth."""
    ev_cause = scenario_truth["event_cause"]
    klass = {c["id"]: c["cause_class"] for c in scenario_truth["causes"]}
    sizes = Counter(ev_cause.values())
    out = []
    for p in proposals:
        cs = Counter(ev_cause[id_map[i]] for i in p.event_ids)
        c, k = cs.most_common(1)[0]
        f1 = 2 * k / (len(p.event_ids) + sizes[c])
        out.append((p.confidence, c != NOISE and f1 >= 0.8 and klass.get(c) == p.cause_class))
    return out


def baseline(records) -> dict[int, int]:
    """One hypothesis per signature (noise signatures included: grouping alone cannot tell)."""
    return {r.id: r.signature_id for r in records}


def _grouping(mode: str):
    if mode == "template":
        return None
    try:
        from incidentbot.signatures import fingerprint  # type: ignore
    except Exception:
        if mode == "auto":
            return None
        raise

    def sig_of(ev):
        fp = fingerprint(ev["message"])
        return fp.key, (fp.title, fp.category, fp.cause_class,
                        tuple(sorted((str(k), str(v)) for k, v in (fp.details or {}).items()))
                        if isinstance(fp.details, dict) else tuple(fp.details or ()))
    try:
        sig_of({"message": "NVRM: Xid (PCI:0000:91:00): 79, pid=1896, GPU has fallen off the bus."})
    except Exception:
        if mode == "auto":
            return None
        raise
    return sig_of


def main_http(a) -> int:
    """Each scenario ingested through POST /v1/events, analysed by POST /v1/analyze, scored from
    the hypothesis_id that GET /v1/events reports for each event."""
    import sys
    import tempfile
    import time
    from pathlib import Path

    import httpx

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _service import TOKEN, database, service
    from ingest import post_all

    from incidentbot.simulate import simulate

    print(f"through the HTTP API ({a.backend}, topology file from the fleet); grouping: incidentbot.signatures.fingerprint")
    hdr = f"{'size':<7}{'seed':>5}{'events':>9}{'ingest s':>9}{'analyze s':>10}{'hyps':>6}{'macroF1':>9}{'1-bug F1':>9}{'found':>7}"
    print(hdr)
    print("-" * len(hdr))
    allf, founds = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for size in a.sizes.split(","):
            for seed in (int(x) for x in a.seeds.split(",")):
                sc = simulate(seed, size=size)
                topo = Path(tmp) / f"topology-{size}-{seed}.txt"
                topo.write_text("".join(f"{h} {sw}\n" for h, sw in sorted(sc.topology.items())))
                with database(a.backend, Path(tmp)) as url, service(url, extra_env={"INCIDENTBOT_TOPOLOGY": str(topo)}) as (base, _proc):
                    secs, _acc, _dup = post_all(base, sc.events, clients=4)
                    with httpx.Client(base_url=base, timeout=600, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                        t0 = time.perf_counter()
                        summary = c.post("/v1/analyze").json()
                        analyze_s = time.perf_counter() - t0
                        e2h, cursor = {}, None
                        while True:
                            page = c.get("/v1/events", params={"limit": 1000, **({"cursor": cursor} if cursor else {})}).json()
                            e2h.update({e["event_id"]: e["hypothesis_id"] for e in page["events"]})
                            cursor = page["next_cursor"]
                            if not cursor:
                                break
                s_ = score(sc.truth, e2h)
                allf.append(s_.macro_f1)
                founds.append(s_.single_bug_found)
                one = f"{s_.single_bug_f1:.3f}" if s_.single_bug_f1 is not None else "-"
                print(f"{size:<7}{seed:>5}{len(sc.events):>9,}{secs:>9.1f}{analyze_s:>10.2f}{summary['hypotheses']:>6}"
                      f"{s_.macro_f1:>9.3f}{one:>9}{'yes' if s_.single_bug_found else 'NO':>7}")
    print("-" * len(hdr))
    print(f"mean macro F1 {sum(allf) / len(allf):.3f}; single bug found in {sum(founds)}/{len(founds)} scenarios")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--sizes", default="small,medium,large")
    ap.add_argument("--grouping", default="auto", choices=["auto", "template", "engine"])
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--http", action="store_true", help="ingest through the real API of an `incidentbot serve` process")
    ap.add_argument("--backend", default="sqlite", help="with --http: sqlite or postgresql")
    a = ap.parse_args(argv)
    if a.http:
        return main_http(a)
    sig_of = _grouping(a.grouping)
    print(f"grouping: {'incidentbot.signatures.fingerprint' if sig_of else 'stand-in (one signature per simulator template)'}")
    hdr = f"{'size':<7}{'seed':>5}{'events':>9}{'causes':>7}{'hyps':>6}{'macroF1':>9}{'base F1':>9}{'1-bug F1':>9}{'found':>7}{'noise in':>9}{'analyze s':>10}"
    print(hdr)
    print("-" * len(hdr))
    allf, allb, founds, big_t = [], [], [], []
    calib: list[tuple[float, bool]] = []
    for size in a.sizes.split(","):
        for seed in [int(x) for x in a.seeds.split(",")]:
            sc = simulate(seed, size=size)
            recs, sigs, id_map = to_records(sc, sig_of)
            t0 = time.perf_counter()
            props = analyze(recs, sigs, topology=sc.topology)
            dt = time.perf_counter() - t0
            s = score(sc.truth, props, id_map)
            calib.extend(calibration(sc.truth, props, id_map))
            b = score(sc.truth, {id_map[k]: v for k, v in baseline(recs).items()})
            allf.append(s.macro_f1)
            allb.append(b.macro_f1)
            founds.append(s.single_bug_found)
            if size == "large":
                big_t.append((len(recs), dt))
            print(f"{size:<7}{seed:>5}{len(recs):>9,}{len(s.per_cause):>7}{s.n_hypotheses:>6}{s.macro_f1:>9.3f}"
                  f"{b.macro_f1:>9.3f}{(s.single_bug_f1 or 0):>9.3f}{'yes' if s.single_bug_found else 'NO':>7}"
                  f"{s.noise_absorbed:>9.1%}{dt:>10.2f}")
            if a.verbose:
                for c, f in sorted(s.per_cause.items(), key=lambda kv: kv[1]):
                    print(f"        {c:<28} F1 {f:.3f}")
                for p in props:
                    print(f"        [{p.kind}] {p.title} ({len(p.event_ids)} ev, conf {p.confidence})")
    print("-" * len(hdr))
    print(f"mean macro F1 {sum(allf) / len(allf):.3f} (baseline {sum(allb) / len(allb):.3f}); "
          f"single bug found in {sum(founds)}/{len(founds)} scenarios")
    for n, dt in big_t:
        print(f"analysis time, {n:,} events: {dt:.2f} s")
    print("calibration (hypotheses by confidence: share whose events match one cause, F1>=0.8, right class):")
    for lo, hi in ((0.0, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 1.01)):
        b = [r for c, r in calib if lo <= c < hi]
        if b:
            print(f"  confidence {lo:.2f}-{min(hi, 1.0):.2f}: {sum(b)}/{len(b)} right ({sum(b) / len(b):.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
