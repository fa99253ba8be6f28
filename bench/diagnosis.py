"""Diagnosis bench: scenarios -> group (signatures) -> analyze -> score against the truth.

    .venv/bin/python bench/diagnosis.py [--seeds tune|report|1,2,3] [--sizes small,medium,large]
        [--source sim|fleetgen] [--family NAME] [--no-topology] [--shapes classic]
        [--grouping auto|template|engine]
        [--http [--backend sqlite|postgresql]] [-v]

Seed sets: ``tune`` is seeds 1-29 (look at these while tuning), ``report`` is seeds 1000-1029 (30
seeds never looked at while tuning; the default). The output names the set.

Scores (noise excluded; the same for the engine and the baseline):

- **macro F1**: per true cause, the F1 between its events and the best-matching hypothesis'
  events (the hypothesis with the highest F1 against it); the mean over causes.
- **symptom-balanced F1**: per true cause, the mean over its symptoms (the truth's
  ``event_template`` of its events) of the F1 between that symptom's events of the cause and the
  cause's best hypothesis restricted to events of that symptom (template); then the mean over
  causes. A symptom of 5 events weighs as much as one of 5,000, so a hypothesis that holds a
  storm but drops the precursor's few lines, or splits off one symptom of a many-symptom bug,
  scores low here even when macro F1 is high.
- **single-bug recovery**: the many-symptom bug (``truth["single_bug"]``) counts as found when
  one hypothesis holds events of every one of its symptoms and its F1 is >= 0.9.

Beside the engine, the baseline: one hypothesis per signature (what grouping alone gives),
on the same signatures. Tables per cause kind and per shape (each cause's ``shape`` in the
truth; and per fleet shape: naming, restarts, ...), the analysis time of the scenario nearest
100,000 events, and the floor check: the engine's macro F1 >= the baseline's on every scenario
(violations listed).

``--source fleetgen`` takes scenarios from the independent generator in ``bench/fleetgen``
(``generate(seed, family=None, size=...)``), grouped by ``incidentbot.signatures.fingerprint``
and analysed without a topology file (``--no-topology`` is its default: localisation from names).
``--http`` sends every scenario through the real API of an ``incidentbot serve`` process and
reads ``event_id -> hypothesis_id`` back from ``GET /v1/events``.

``score()`` is the entry point for other modes and for tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from incidentbot.analysis import analyze  # noqa: E402
from incidentbot.simulate import NOISE, simulate, to_records  # noqa: E402

SINGLE_BUG = "sw-torchsum"  # the simulator's many-symptom bug, when a truth does not name one
SEED_SETS = {"tune": list(range(1, 30)), "report": list(range(1000, 1030))}
TIMING_EVENTS = 100_000


@dataclass
class Scores:
    macro_f1: float
    per_cause: dict[str, float]
    single_bug_f1: float | None  # None when the scenario has no single-bug cause
    single_bug_found: bool
    n_hypotheses: int
    noise_absorbed: float  # share of noise events placed in some hypothesis
    details: dict[str, Any] = field(default_factory=dict)
    balanced_f1: float = 0.0
    per_cause_balanced: dict[str, float] = field(default_factory=dict)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _single_bug_id(truth: Any) -> str | None:
    sb = _get(truth, "single_bug", SINGLE_BUG)
    if isinstance(sb, Mapping):
        sb = sb.get("id") or sb.get("cause") or sb.get("cause_id")
    elif isinstance(sb, (list, tuple)):
        sb = sb[0] if sb else None
    return sb


def score(scenario_truth: Mapping[str, Any], proposals_or_event_to_hypothesis: Any,
          id_map: Mapping[int, str] | None = None) -> Scores:
    """Score hypotheses against the truth.

    ``scenario_truth``: the truth (``Scenario.truth``, the parsed ``*.truth.json``, or fleetgen's
    truth: a mapping or an object with ``event_cause``, ``event_template``, ``single_bug``).
    ``proposals_or_event_to_hypothesis``: either a mapping ``event_id (str) -> hypothesis id``
    (``None``/missing = no hypothesis), or a list of ``Proposal`` whose ``event_ids`` are ints, in
    which case ``id_map`` maps those ints back to the scenario's event_id strings.
    """
    ev_cause: Mapping[str, str] = _get(scenario_truth, "event_cause")
    ev_tmpl: Mapping[str, str] = _get(scenario_truth, "event_template", {}) or {}
    single = _single_bug_id(scenario_truth)
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
    # per hypothesis: how many of its events carry each template (for the restriction to a symptom)
    hyp_tmpl: dict[Any, Counter] = defaultdict(Counter)
    for e, h in e2h.items():
        hyp_tmpl[h][ev_tmpl.get(e)] += 1
    per: dict[str, float] = {}
    per_bal: dict[str, float] = {}
    best_h: dict[str, Any] = {}
    for c, es in sorted(cause_events.items()):
        if c == NOISE:
            continue
        inter: Counter = Counter(e2h[e] for e in es if e in e2h)
        best, bh = 0.0, None
        for h, k in sorted(inter.items(), key=lambda kv: str(kv[0])):
            f1 = 2 * k / (len(es) + len(hyp_events[h]))
            if f1 > best:
                best, bh = f1, h
        per[c] = best
        best_h[c] = bh
        by_sym: dict[Any, list[str]] = defaultdict(list)
        for e in es:
            by_sym[ev_tmpl.get(e)].append(e)
        sym_f1 = []
        for sym, ses in by_sym.items():
            if bh is None:
                sym_f1.append(0.0)
                continue
            k = sum(1 for e in ses if e2h.get(e) == bh)
            sym_f1.append(2 * k / (len(ses) + hyp_tmpl[bh][sym]))
        per_bal[c] = sum(sym_f1) / len(sym_f1)
    macro = sum(per.values()) / len(per) if per else 1.0
    balanced = sum(per_bal.values()) / len(per_bal) if per_bal else 1.0
    sb = per.get(single) if single else None
    found = False
    if sb is not None and best_h.get(single) is not None:
        syms = {ev_tmpl.get(e) for e in cause_events[single]}
        in_h = {ev_tmpl.get(e) for e in cause_events[single] if e2h.get(e) == best_h[single]}
        found = sb >= 0.9 and syms <= in_h
    noise = cause_events.get(NOISE, set())
    absorbed = sum(1 for e in noise if e in e2h) / len(noise) if noise else 0.0
    return Scores(macro, per, sb, found, len(hyp_events), absorbed, balanced_f1=balanced,
                  per_cause_balanced=per_bal)


def calibration(scenario_truth: Mapping[str, Any], proposals, id_map: Mapping[int, str]) -> list[tuple[float, bool]]:
    """(confidence, right) per proposal: right = its events best match one cause with F1 >= 0.8 and the
    cause class agrees with the truth."""
    ev_cause = _get(scenario_truth, "event_cause")
    klass = {c["id"]: c.get("cause_class") for c in _get(scenario_truth, "causes")}
    sizes = Counter(ev_cause.values())
    out = []
    for p in proposals:
        if not p.event_ids:
            continue
        # Progress reports (exposure, not failures) have no cause in the truth: not counted.
        cs = Counter(ev_cause[id_map[i]] for i in p.event_ids if id_map.get(i) in ev_cause)
        if not cs:
            continue
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


# --------------------------------------------------------------------------- scenario sources


@dataclass
class Case:
    """One scenario, whatever made it: events in the ingest schema, the truth, the topology."""

    name: str  # e.g. "sim/small/1003"
    seed: int
    size: str
    events: list[dict[str, Any]]
    truth: Any
    topology: dict[str, str] | None
    shapes: dict[str, Any]
    scenario: Any = None  # the simulator's Scenario (for the stand-in grouping), else None


def parse_seeds(spec: str) -> tuple[str, list[int]]:
    """``tune`` / ``report`` / ``1,2,5-8`` -> (name of the set, seeds)."""
    if spec == "tune":
        return "tune (seeds 1-29: the tuning set)", SEED_SETS[spec]
    if spec == "report":
        return "report (seeds 1000-1029: never looked at while tuning)", SEED_SETS[spec]
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        a, dash, b = part.partition("-")
        if not a.isdigit() or (dash and not b.isdigit()):
            raise SystemExit(f"--seeds: expected 'tune', 'report' or a list like 1,2,5-8; got {spec!r}")
        seeds.extend(range(int(a), int(b) + 1) if dash else [int(a)])
    kinds = {"tune" if s < 100 else "report" if 1000 <= s else "other" for s in seeds}
    name = "explicit list (" + ", ".join(
        {"tune": "tuning seeds < 100", "report": "REPORT seeds >= 1000", "other": "seeds 100-999"}[k]
        for k in sorted(kinds)) + ")"
    return name, seeds


def load_fleetgen():
    """``bench/fleetgen``'s ``generate``, imported only when asked for."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    try:
        from fleetgen import generate  # type: ignore
    except ImportError as exc:
        raise SystemExit(
            "--source fleetgen: bench/fleetgen is not importable here "
            f"({exc}); it is the independent generator (bench/fleetgen/__init__.py with "
            "generate(seed, family=None, size=...)), merged from its own branch"
        ) from exc
    return generate


def cases(source: str, seeds: Iterable[int], sizes: Iterable[str], *, family: str | None = None,
          shapes: str | None = None) -> Iterable[Case]:
    if source == "fleetgen":
        generate = load_fleetgen()
    for size in sizes:
        sz: str | int = int(size) if size.isdigit() else size
        for seed in seeds:
            if source == "fleetgen":
                g = generate(seed, family=family, size=sz)
                truth = g.truth
                fam = _get(truth, "family") or family or "-"
                yield Case(f"fleetgen/{fam}/{size}/{seed}", seed, str(size), list(g.events), truth,
                           dict(getattr(g, "topology", None) or {}) or None, {"family": fam})
            else:
                sc = simulate(seed, size=sz, shapes=shapes)
                yield Case(f"sim/{sc.size}/{seed}", seed, sc.size, sc.events, sc.truth, sc.topology,
                           dict(sc.shapes), sc)


def records_of(case: Case, sig_of):
    """Analysis inputs, the way ``to_records`` builds them (fingerprint grouping unless the
    simulator's stand-in grouping was asked for)."""
    if case.scenario is not None:
        return to_records(case.scenario, sig_of)
    if sig_of is None:
        raise SystemExit("--grouping template needs the simulator's templates; fleetgen scenarios are "
                         "grouped by incidentbot.signatures.fingerprint (--grouping auto|engine)")
    return to_records(SimpleNamespace(events=case.events, event_template={}), sig_of)


# --------------------------------------------------------------------------- report


@dataclass
class Row:
    case: Case
    n_events: int
    engine: Scores
    base: Scores
    analyze_s: float
    n_hyps: int
    extra: dict[str, Any] = field(default_factory=dict)


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def cause_kinds(truth: Any) -> dict[str, tuple[str, str]]:
    """cause id -> (kind, shape)."""
    out = {}
    for c in _get(truth, "causes", []) or []:
        kind = c.get("kind") or c.get("cause_class") or "?"
        out[c["id"]] = (kind, c.get("shape") or kind)
    return out


def report(rows: list[Row], *, set_name: str, topology_used: bool) -> None:
    print()
    print(f"seed set: {set_name}; {len(rows)} scenarios; topology file: {'yes' if topology_used else 'no (names only)'}")
    ef = [r.engine.macro_f1 for r in rows]
    bf = [r.base.macro_f1 for r in rows]
    eb = [r.engine.balanced_f1 for r in rows]
    bb = [r.base.balanced_f1 for r in rows]
    withbug = [r for r in rows if r.engine.single_bug_f1 is not None or r.base.single_bug_f1 is not None]
    print(f"{'':<10}{'macro F1':>10}{'min':>7}{'balanced F1':>13}{'min':>7}{'single bug found':>18}")
    for name, m, b, key in (("engine", ef, eb, "engine"), ("baseline", bf, bb, "base")):
        found = sum(getattr(r, key).single_bug_found for r in withbug)
        print(f"{name:<10}{_mean(m):>10.3f}{min(m):>7.3f}{_mean(b):>13.3f}{min(b):>7.3f}{f'{found}/{len(withbug)}':>18}")
    # per cause kind and per shape
    agg: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        ks = cause_kinds(r.case.truth)
        for c, f in r.engine.per_cause.items():
            kind, shape = ks.get(c, ("?", "?"))
            for table, label in (("kind", kind), ("shape", shape)):
                d = agg[(table, label)]
                d["e"].append(f)
                d["eb"].append(r.engine.per_cause_balanced.get(c, 0.0))
                d["b"].append(r.base.per_cause.get(c, 0.0))
                d["bb"].append(r.base.per_cause_balanced.get(c, 0.0))
    for table in ("kind", "shape"):
        print()
        print(f"per cause {table:<28}{'causes':>7}{'engine F1':>11}{'bal':>7}{'base F1':>9}{'bal':>7}")
        for (t, label), d in sorted(agg.items()):
            if t != table:
                continue
            print(f"  {label:<34}{len(d['e']):>7}{_mean(d['e']):>11.3f}{_mean(d['eb']):>7.3f}"
                  f"{_mean(d['b']):>9.3f}{_mean(d['bb']):>7.3f}")
    # per fleet shape (scenario level)
    fleet: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        for k, v in r.case.shapes.items():
            fleet[(k, str(v))].append(r)
    if fleet:
        print()
        print(f"per fleet shape {'':<24}{'scen.':>6}{'engine F1':>11}{'bal':>7}{'base F1':>9}{'1-bug':>7}")
        for (k, v), rs in sorted(fleet.items()):
            wb = [r for r in rs if r.engine.single_bug_f1 is not None]
            print(f"  {k + '=' + v:<38}{len(rs):>6}{_mean([r.engine.macro_f1 for r in rs]):>11.3f}"
                  f"{_mean([r.engine.balanced_f1 for r in rs]):>7.3f}{_mean([r.base.macro_f1 for r in rs]):>9.3f}"
                  f"{f'{sum(r.engine.single_bug_found for r in wb)}/{len(wb)}':>7}")
    # timing
    print()
    if rows:
        near = min(rows, key=lambda r: abs(r.n_events - TIMING_EVENTS))
        big = [r for r in rows if r.n_events >= 50_000]
        print(f"analysis time: {near.n_events:,} events ({near.case.name}) in {near.analyze_s:.2f} s"
              + (f"; median over {len(big)} scenarios >= 50k events: "
                 f"{statistics.median(r.analyze_s / r.n_events * TIMING_EVENTS for r in big):.2f} s per 100k events"
                 if big else ""))
    bad = [r for r in rows if r.engine.macro_f1 + 1e-9 < r.base.macro_f1]
    print(f"floor check (engine macro F1 >= baseline on every scenario): "
          f"{'OK' if not bad else f'{len(bad)} violation(s)'}")
    for r in bad:
        print(f"  {r.case.name}: engine {r.engine.macro_f1:.3f} < baseline {r.base.macro_f1:.3f}")


def _row_line(r: Row) -> str:
    sb = r.engine.single_bug_f1
    return (f"{r.case.name:<26}{r.n_events:>9,}{len(r.engine.per_cause):>7}{r.n_hyps:>6}{r.engine.macro_f1:>9.3f}"
            f"{r.engine.balanced_f1:>8.3f}{r.base.macro_f1:>9.3f}{r.base.balanced_f1:>8.3f}"
            f"{(f'{sb:.3f}' if sb is not None else '-'):>9}{('yes' if r.engine.single_bug_found else 'NO') if sb is not None else '-':>7}"
            f"{r.engine.noise_absorbed:>9.1%}{r.analyze_s:>10.2f}")


HEADER = (f"{'scenario':<26}{'events':>9}{'causes':>7}{'hyps':>6}{'macroF1':>9}{'bal':>8}{'base F1':>9}{'bal':>8}"
          f"{'1-bug F1':>9}{'found':>7}{'noise in':>9}{'analyze s':>10}")


def main_inproc(a, set_name: str, seeds: list[int]) -> int:
    sig_of = _grouping(a.grouping)
    if a.source == "fleetgen" and sig_of is None:
        sig_of = _grouping("engine")
    use_topology = not a.no_topology
    print(f"source: {a.source}; grouping: "
          f"{'incidentbot.signatures.fingerprint' if sig_of else 'stand-in (one signature per simulator template)'}")
    print(HEADER)
    print("-" * len(HEADER))
    rows: list[Row] = []
    calib: list[tuple[float, bool]] = []
    for case in cases(a.source, seeds, a.sizes.split(","), family=a.family, shapes=a.shapes):
        recs, sigs, id_map = records_of(case, sig_of)
        t0 = time.perf_counter()
        props = analyze(recs, sigs, topology=case.topology if use_topology else None)
        dt = time.perf_counter() - t0
        s = score(case.truth, props, id_map)
        b = score(case.truth, {id_map[k]: v for k, v in baseline(recs).items()})
        calib.extend(calibration(case.truth, props, id_map))
        row = Row(case, len(recs), s, b, dt, s.n_hypotheses)
        rows.append(row)
        print(_row_line(row), flush=True)
        if a.verbose:
            ks = cause_kinds(case.truth)
            for c, f in sorted(s.per_cause.items(), key=lambda kv: kv[1]):
                print(f"        {c:<28} {ks.get(c, ('?', '?'))[1]:<28} F1 {f:.3f} bal {s.per_cause_balanced[c]:.3f} "
                      f"(base {b.per_cause.get(c, 0):.3f})")
            for p in props:
                print(f"        [{p.kind}] {p.title} ({len(p.event_ids)} ev, conf {p.confidence})")
    print("-" * len(HEADER))
    report(rows, set_name=set_name, topology_used=use_topology)
    print("calibration (hypotheses by confidence: share whose events match one cause, F1>=0.8, right class):")
    for lo, hi in ((0.0, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 1.01)):
        bucket = [r for c, r in calib if lo <= c < hi]
        if bucket:
            print(f"  confidence {lo:.2f}-{min(hi, 1.0):.2f}: {sum(bucket)}/{len(bucket)} right ({sum(bucket) / len(bucket):.0%})")
    return 0


def main_http(a, set_name: str, seeds: list[int]) -> int:
    """Each scenario ingested through POST /v1/events, analysed by POST /v1/analyze, scored from
    the hypothesis_id that GET /v1/events reports for each event; the baseline from the
    signature_id it reports (the service's own grouping)."""
    import tempfile

    import httpx

    sys.path.insert(0, str(BENCH))
    from _service import TOKEN, database, service
    from ingest import post_all

    use_topology = not a.no_topology
    print(f"source: {a.source}; through the HTTP API ({a.backend}, "
          f"{'topology file from the fleet' if use_topology else 'no topology file'}); grouping: the service's")
    print(HEADER)
    print("-" * len(HEADER))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases(a.source, seeds, a.sizes.split(","), family=a.family, shapes=a.shapes):
            extra_env = {}
            if use_topology and case.topology:
                topo = Path(tmp) / f"topology-{case.size}-{case.seed}.txt"
                topo.write_text("".join(f"{h} {sw}\n" for h, sw in sorted(case.topology.items())))
                extra_env["INCIDENTBOT_TOPOLOGY"] = str(topo)
            with database(a.backend, Path(tmp)) as url, service(url, extra_env=extra_env) as (base, _proc):
                secs, _acc, _dup = post_all(base, case.events, clients=4)
                with httpx.Client(base_url=base, timeout=600, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                    t0 = time.perf_counter()
                    summary = c.post("/v1/analyze").json()
                    analyze_s = time.perf_counter() - t0
                    e2h, e2s, cursor = {}, {}, None
                    while True:
                        page = c.get("/v1/events", params={"limit": 1000, **({"cursor": cursor} if cursor else {})}).json()
                        for e in page["events"]:
                            e2h[e["event_id"]] = e["hypothesis_id"]
                            e2s[e["event_id"]] = e["signature_id"]
                        cursor = page["next_cursor"]
                        if not cursor:
                            break
            s = score(case.truth, e2h)
            b = score(case.truth, e2s)
            row = Row(case, len(case.events), s, b, analyze_s, summary.get("hypotheses", s.n_hypotheses),
                      {"ingest_s": secs})
            rows.append(row)
            print(_row_line(row) + f"   (ingest {secs:.1f} s)", flush=True)
    print("-" * len(HEADER))
    report(rows, set_name=set_name, topology_used=use_topology)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="report", help="tune (1-29), report (1000-1029, the default) or a list: 1,2,5-8")
    ap.add_argument("--sizes", default="small,medium,large")
    ap.add_argument("--source", default="sim", choices=["sim", "fleetgen"])
    ap.add_argument("--family", default=None, help="with --source fleetgen: one family (default: the generator's choice per seed)")
    ap.add_argument("--no-topology", action="store_true", default=None,
                    help="analyse without the topology file (localisation from names); the default for fleetgen")
    ap.add_argument("--topology", dest="no_topology", action="store_false", help="use the scenario's topology file")
    ap.add_argument("--shapes", default=None, choices=["classic"],
                    help="with --source sim: the classic fleet (c1-gpu0007 names, one job id per job) instead of shapes drawn per seed")
    ap.add_argument("--grouping", default="auto", choices=["auto", "template", "engine"])
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--http", action="store_true", help="ingest through the real API of an `incidentbot serve` process")
    ap.add_argument("--backend", default="sqlite", help="with --http: sqlite or postgresql")
    a = ap.parse_args(argv)
    if a.no_topology is None:
        a.no_topology = a.source == "fleetgen"
    set_name, seeds = parse_seeds(a.seeds)
    if a.source == "fleetgen":
        load_fleetgen()  # fail before any output when it is not there
    print(f"seed set: {set_name}: {seeds[0]}..{seeds[-1]} ({len(seeds)} seeds)" if seeds else "no seeds")
    if not seeds:
        return 2
    if a.http:
        return main_http(a, set_name, seeds)
    return main_inproc(a, set_name, seeds)


if __name__ == "__main__":
    raise SystemExit(main())
