"""python -m bench.fleetgen --seed N [--family F] [--size S] --out DIR

Writes DIR/events.jsonl (one contract Event per line, ready for POST /v1/events), DIR/truth.json
(truth, topology and meta) and prints the events per cause."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fleetgen import FAMILIES, SIZES, generate  # type: ignore[no-redef]
else:
    from . import FAMILIES, SIZES, generate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fleetgen", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--family", choices=sorted(FAMILIES), default=None, help="default: drawn from the seed")
    ap.add_argument("--size", choices=list(SIZES), default="medium")
    ap.add_argument("--out", type=Path, required=True, help="directory to write events.jsonl and truth.json into")
    args = ap.parse_args(argv)
    sc = generate(args.seed, family=args.family, size=args.size)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "events.jsonl", "w", encoding="utf-8") as f:
        for ev in sc.events:
            f.write(json.dumps(ev, ensure_ascii=False) + "\n")
    with open(args.out / "truth.json", "w", encoding="utf-8") as f:
        json.dump({"truth": sc.truth, "topology": sc.topology, "meta": sc.meta}, f, indent=1)
    kinds = {c["id"]: (c["cause_class"], c["kind"]) for c in sc.truth["causes"]}
    per = Counter(sc.truth["event_cause"].values())
    print(f"family {sc.meta['family']}  size {args.size}  seed {args.seed}  events {len(sc.events)}  "
          f"progress {len(sc.truth['progress_event_ids'])}  hosts {sc.meta['hosts']}  attempts {sc.meta['attempts']}")
    print(f"{'cause':8} {'class':15} {'kind':26} {'events':>7}")
    for cid, n in sorted(per.items(), key=lambda kv: -kv[1]):
        cls, kind = kinds.get(cid, ("-", cid))
        mark = "  <- single bug" if cid == sc.truth["single_bug"] else ""
        print(f"{cid:8} {cls:15} {kind:26} {n:7d}{mark}")
    print("interruptions per class:", json.dumps(sc.truth["interruptions"]))
    print(f"wrote {args.out / 'events.jsonl'} and {args.out / 'truth.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
