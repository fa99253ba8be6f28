"""Grouping benchmark: incidentbot's template miner vs Drain3 on the Loghub 2k samples.

Usage (from the project root):  .venv/bin/python bench/grouping.py [--systems HDFS,BGL] [--quiet]

Reads ../shared/data/loghub-2k/<System>/<System>_2k.log_structured_corrected.csv (Content column,
EventId ground truth) by path; nothing is copied.  GA = Loghub grouping accuracy: a message is
correct only if the set of messages in its predicted group equals exactly its true group.

Then measures fingerprint() throughput on the GPU exemplar texts, cached and uncached.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
LOGHUB = DATA / "loghub-2k"
SYSTEMS = ["Android", "Apache", "BGL", "HDFS", "HPC", "Hadoop", "HealthApp", "Linux", "Mac", "OpenSSH",
           "OpenStack", "Proxifier", "Spark", "Thunderbird", "Windows", "Zookeeper"]


def load(system: str) -> tuple[list[str], list[str]]:
    path = LOGHUB / system / f"{system}_2k.log_structured_corrected.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["Content"] for r in rows], [r["EventId"] for r in rows]


def grouping_accuracy(pred: list, truth: list) -> float:
    by_pred: dict = defaultdict(list)
    by_true: dict = defaultdict(set)
    for i, (p, t) in enumerate(zip(pred, truth)):
        by_pred[p].append(i)
        by_true[t].add(i)
    correct = 0
    for members in by_pred.values():
        labels = {truth[i] for i in members}
        if len(labels) == 1 and len(by_true[truth[members[0]]]) == len(members):
            correct += len(members)
    return correct / len(truth)


def run_engine(lines: list[str]) -> list[int]:
    from incidentbot.signatures import group
    return group(lines)


def _drain_config(masking: bool):
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig
    cfg = TemplateMinerConfig()
    cfg.drain_sim_th = 0.4
    cfg.drain_depth = 4
    cfg.profiling_enabled = False
    cfg.parametrize_numeric_tokens = True
    if masking:  # the usual masking from Drain3's own example config
        cfg.masking_instructions = [
            MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
            MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
            MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
            MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
            MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
            MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
            MaskingInstruction(r"(?<=executed cmd )(\".+?\")", "CMD"),
        ]
    return cfg


def run_drain(lines: list[str], masking: bool = False) -> list[int]:
    from drain3 import TemplateMiner
    tm = TemplateMiner(config=_drain_config(masking))
    ids = [tm.add_log_message(line)["cluster_id"] for line in lines]
    # a message belongs to the cluster it was finally merged into; Drain3 keeps cluster ids
    # stable when templates generalise, so the id returned by add_log_message is final
    return ids


def timed(fn, *a, repeat: int = 3):
    """Result and best wall time of *repeat* runs (each run starts from scratch)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = fn(*a)
        best = min(best, time.perf_counter() - t0)
    return r, best


def _clear_caches() -> None:
    from incidentbot import signatures

    signatures.SHAPES.clear()


def _old_clear_caches() -> None:
    from incidentbot import signatures

    signatures._fingerprint_cached.cache_clear()
    signatures._shapes.clear()
    signatures._by_text.clear()
    signatures._sightings.clear()
    signatures._by_digits.clear()


def fingerprint_throughput() -> dict[str, float]:
    """texts/s for: exact repeats; the exemplars as a fleet sends them again and again, with other
    ranks, pids and numbers each time (cold: shapes learned on the way; then steady state); novel
    texts (every cache cold: a full parse each)."""
    from incidentbot.signatures import _build, explain, fingerprint

    path = DATA / "gpu-failures" / "exemplars.jsonl"
    texts = [json.loads(l)["text"] for l in path.open(encoding="utf-8")]
    out = {}
    _clear_caches()
    reps = [texts[i % len(texts)] for i in range(200000)]
    for t in texts:
        fingerprint(t)
    t0 = time.perf_counter()
    for t in reps:
        fingerprint(t)
    out["exact repeats"] = len(reps) / (time.perf_counter() - t0)
    n = 20000

    # What the engine masks in each text (pids, addresses, timestamps, sizes, …) takes other values
    # of the same width, and the rank and pid of the reporting process vary in width too: the
    # same failure modes as a fleet sends them again and again.
    # (Not NUM: a status or exit code is masked in the template but still tells failures apart.)
    variable = {t: sorted({v for kind, v in explain(t).masked if kind in _PER_OCCURRENCE and len(v) >= 2
                           and any(c.isdigit() for c in v)}, key=len, reverse=True)
                for t in texts}

    def varied(seed: int) -> list[str]:
        rng = random.Random(seed)
        out = []
        for i in range(n):
            t = texts[i % len(texts)]
            for v in variable[t]:
                t = t.replace(v, _DIGIT.sub(lambda _: str(rng.randrange(10)), v))
            out.append(t + f"\n[rank{rng.randrange(10 ** rng.randint(1, 5))}] pid {rng.randrange(10 ** rng.randint(3, 7))}")
        return out

    _clear_caches()
    first, later = varied(1), varied(2)
    t0 = time.perf_counter()
    for t in first:
        fingerprint(t)
    out["numbers varied, first 20,000 (learning shapes)"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for t in later:
        fingerprint(t)
    out["numbers varied, next 20,000 (steady state)"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    full = [_build(t, False)[0].key for t in later[:3000]]
    out["novel multi-line (a full parse each)"] = 3000 / (time.perf_counter() - t0)
    agree = sum(fingerprint(t).key == k for t, k in zip(later, full))
    print(f"  (cached answers that agree with a full parse: {agree:,} of {len(full):,})")
    firsts = [texts[i % len(texts)].splitlines()[0] + f" #{i}" for i in range(3000)]
    t0 = time.perf_counter()
    for t in firsts:
        _build(t, False)
    out["novel single lines"] = 3000 / (time.perf_counter() - t0)
    return out


_DIGIT = re.compile(r"\d")
_PER_OCCURRENCE = {"HEX", "TS", "PCI", "RANK", "DURATION", "SEQ", "PID", "NUMEL", "HOST", "SIZE", "TID", "IP", "PATH", "GID"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--no-drain", action="store_true")
    args = ap.parse_args(argv)
    if not LOGHUB.is_dir():
        print(f"loghub data not found at {LOGHUB}; skipping")
        return 0
    systems = [s for s in args.systems.split(",") if s]
    hdr = f"{'system':<12} {'GA engine':>9} {'GA drain3':>9} {'GA d3+mask':>10} {'msg/s engine':>12} {'msg/s drain3':>12} {'msg/s d3+mask':>13}"
    print(hdr)
    print("-" * len(hdr))
    tot = defaultdict(float)
    for s in systems:
        lines, truth = load(s)
        pe, te = timed(run_engine, lines)
        ga_e = grouping_accuracy(pe, truth)
        if args.no_drain:
            ga_d = ga_m = float("nan"); td = tm = float("nan")
        else:
            pd, td = timed(run_drain, lines, False)
            pm, tm = timed(run_drain, lines, True)
            ga_d, ga_m = grouping_accuracy(pd, truth), grouping_accuracy(pm, truth)
        row = (ga_e, ga_d, ga_m, len(lines) / te, len(lines) / td, len(lines) / tm)
        for k, v in zip(("ge", "gd", "gm", "se", "sd", "sm"), row):
            tot[k] += v
        print(f"{s:<12} {row[0]:>9.3f} {row[1]:>9.3f} {row[2]:>10.3f} {row[3]:>12.0f} {row[4]:>12.0f} {row[5]:>13.0f}")
    k = len(systems)
    print("-" * len(hdr))
    print(f"{'average':<12} {tot['ge']/k:>9.3f} {tot['gd']/k:>9.3f} {tot['gm']/k:>10.3f} {tot['se']/k:>12.0f} {tot['sd']/k:>12.0f} {tot['sm']/k:>13.0f}")
    if (DATA / "gpu-failures" / "exemplars.jsonl").is_file():
        print("\nfingerprint() on the 103 GPU exemplar texts (avg ~500 chars, multi-line), one core:")
        rates = fingerprint_throughput()
        for name, rate in rates.items():
            print(f"  {name:<48} {rate:>12,.0f} texts/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
