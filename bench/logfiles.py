"""Plain-log parsing speed and linearity: lines per second over real texts, and the ratio of the
time per line at 100x and 1000x the input against 10x (a linear parser stays near 1.0; 10x as the
base because one copy of the small inputs is too short to time).

    .venv/bin/python bench/logfiles.py

Inputs: the real torchrun capture in tests/data/torchrun, the format fixtures in tests/data/logs,
Loghub's Linux and HPC 2k samples (../shared/data, benchmark input only), and a hostile text
(long lines of colons and digits, brackets, nested prefixes, a runaway traceback).
"""

from __future__ import annotations

import time
from pathlib import Path

from incidentbot.ingest.logfiles import parse_text

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "loghub-2k"


def corpus() -> dict[str, str]:
    texts = {"torchrun stderr": (ROOT / "tests/data/torchrun/stderr.txt").read_text(),
             "format fixtures": "".join(p.read_text() for p in sorted((ROOT / "tests/data/logs").glob("*")) if p.suffix != ".json"
                                        and p.name != "README.md")}
    for name in ("Linux", "HPC"):
        path = SHARED / name / f"{name}_2k.log"
        if path.exists():
            texts[f"Loghub {name} 2k"] = path.read_text(errors="replace")
    texts["hostile"] = (("a:" + "1" * 2000 + ":") * 4 + "\n" + "[" * 4000 + "\n" + "[rank1]:" * 300 + "x\n"
                        + "Traceback (most recent call last):\n" + '  File "f.py", line 1, in g\n' * 200 + "E: x\n")
    return texts


def seconds(text: str) -> float:
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        parse_text(text, year=2025)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    print("| input | lines | records | failures | lines/s | time per line at 100x / 10x | at 1000x (Loghub: 200x) / 10x |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, text in corpus().items():
        lines = text.count("\n")
        records = parse_text(text, year=2025)
        base = seconds(text * 10) / 10
        x100 = seconds(text * 100) / 100
        x1000 = seconds(text * 1000) / 1000 if lines <= 300 else seconds(text * 200) / 200
        print(f"| {name} | {lines:,} | {len(records):,} | {sum(r.kind is not None for r in records):,} | {lines / base:,.0f} "
              f"| {x100 / base:.2f} | {x1000 / base:.2f} |")


if __name__ == "__main__":
    main()
