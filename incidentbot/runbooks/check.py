"""`incidentbot runbooks check [DIR]`: validate a runbook directory."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .loader import check_runbooks, load_runbooks


def main_check(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="incidentbot runbooks check",
        description="Validate runbook front matter, patterns, examples and links.",
    )
    parser.add_argument("directory", nargs="?", default="runbooks", help="runbook directory (default: runbooks)")
    parser.add_argument(
        "--samples",
        type=Path,
        action="append",
        default=[],
        help='file of extra sample failure texts: one per line, or JSON lines with a "text" field (.jsonl); may repeat',
    )
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    samples: list[str] = []
    for f in args.samples:
        try:
            lines = [line for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as exc:
            print(f"{f}:0: cannot read samples: {exc}", file=sys.stderr)
            return 2
        if f.suffix == ".jsonl":
            for n, line in enumerate(lines, 1):
                try:
                    samples.append(str(json.loads(line)["text"]))
                except (ValueError, KeyError, TypeError):
                    print(f'{f}:{n}: expected a JSON object with a "text" field', file=sys.stderr)
                    return 2
        else:
            samples.extend(lines)
    directory = Path(args.directory)
    errors = check_runbooks(directory, samples=samples)
    if errors:
        for e in errors:
            print(str(e), file=sys.stderr)
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"OK: {len(load_runbooks(directory))} runbooks")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main_check())
