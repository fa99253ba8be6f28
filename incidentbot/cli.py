"""Command line: ``incidentbot serve | ingest | analyze | hypotheses | digest | runbooks | explain | simulate | prune``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from incidentbot.db import SchemaAheadError
from incidentbot.settings import SettingsError, load_settings

__all__ = ["main"]


def _runtime(*, migrate: bool = True):
    from incidentbot.runtime import build_runtime

    return build_runtime(load_settings(), migrate=migrate)


# -- serve ---------------------------------------------------------------------------------

def cmd_serve(args) -> int:
    from incidentbot.server import serve

    return serve(host=args.host, port=args.port, demo=args.demo, allow_remote=args.allow_remote, workers=args.workers)


# -- ingest --------------------------------------------------------------------------------

class _Progress:
    """A one-line progress display on a terminal; silent otherwise."""

    def __init__(self, total_bytes: int | None):
        self.tty = sys.stderr.isatty()
        self.total = total_bytes
        self.last = 0.0

    def update(self, done_bytes: int, accepted: int, duplicates: int, rejected: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.tty or (not force and now - self.last < 0.2):
            return
        self.last = now
        pct = f"{100 * done_bytes / self.total:5.1f}% " if self.total else ""
        sys.stderr.write(f"\r{pct}accepted {accepted:,}  duplicates {duplicates:,}  rejected {rejected:,}   ")
        sys.stderr.flush()
        if force:
            sys.stderr.write("\n")


def _read_lines(path: str) -> tuple[Iterator[tuple[int, int, str]], int | None]:
    if path == "-":
        stream, size = sys.stdin, None
    else:
        p = Path(path)
        stream, size = p.open(encoding="utf-8", errors="surrogateescape"), p.stat().st_size

    def gen():
        done = 0
        for n, line in enumerate(stream, 1):
            done += len(line)
            yield n, done, line

    return gen(), size


def cmd_ingest(args) -> int:
    from incidentbot.ingest import from_torchelastic, validate_batch

    lines, size = _read_lines(args.file)
    progress = _Progress(size)
    accepted = duplicates = rejected = 0
    batch: list[tuple[int, dict]] = []
    sender = _HttpSender(args.url, args.token) if args.url else _DbSender()

    def flush():
        nonlocal accepted, duplicates, rejected, batch
        if not batch:
            return
        events, errors = validate_batch([e for _, e in batch])
        bad = {e.index for e in errors}
        for err in errors:
            print(f"line {batch[err.index][0]}: {err.field or 'event'}: {err.message}", file=sys.stderr)
        rejected += len(bad)
        good = [e for i, (_, e) in enumerate(batch) if i not in bad]
        if bad and good:
            events, _ = validate_batch(good)  # the file's bad lines are reported; the rest still goes in
        if good:
            a, d = sender.send(good if args.url else events)
            accepted += a
            duplicates += d
        batch = []

    if args.torchelastic:
        text = Path(args.file).read_text() if args.file != "-" else sys.stdin.read()
        try:
            batch.append((1, from_torchelastic(text, job_id=args.job_id or os.environ.get("TORCHELASTIC_RUN_ID") or "unknown",
                                               rank=args.rank, host=args.host)))
        except ValueError as exc:
            print(f"{args.file}: {exc}", file=sys.stderr)
            return 1
        flush()
    else:
        for n, done, line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                item = json.loads(line)
            except (ValueError, RecursionError) as exc:
                print(f"line {n}: not JSON: {str(exc)[:120]}", file=sys.stderr)
                rejected += 1
                continue
            batch.append((n, item))
            if len(batch) >= args.batch:
                flush()
                progress.update(done, accepted, duplicates, rejected)
        flush()
    progress.update(size or 0, accepted, duplicates, rejected, force=True)
    print(json.dumps({"accepted": accepted, "duplicates": duplicates, "rejected": rejected}))
    return 0 if rejected == 0 else 2


class _DbSender:
    def __init__(self):
        self.rt = _runtime()

    def send(self, events) -> tuple[int, int]:
        r = self.rt.ingest.ingest(events, source="cli")
        return r.accepted, r.duplicates


class _HttpSender:
    def __init__(self, url: str, token: str | None):
        import httpx

        token = token or os.environ.get("INCIDENTBOT_TOKEN") or (load_settings().ingest_tokens.split(",")[0].split(":")[-1] or None)
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=60,
                                   headers={"Authorization": f"Bearer {token}"} if token else {})

    def send(self, events) -> tuple[int, int]:
        for attempt in range(5):
            try:
                r = self.client.post("/v1/events", json={"events": events})
            except Exception as exc:  # noqa: BLE001 - network errors are retried
                err = str(exc)
            else:
                if r.status_code == 202:
                    body = r.json()
                    return body["accepted"], body["duplicates"]
                if r.status_code < 500:
                    raise SystemExit(f"the service refused the batch: HTTP {r.status_code}: {r.text[:500]}")
                err = f"HTTP {r.status_code}"
            time.sleep(min(2 ** attempt * 0.5, 8))
        raise SystemExit(f"could not deliver a batch after 5 attempts: {err}")


# -- analysis and reading ---------------------------------------------------------------------

def cmd_analyze(args) -> int:
    rt = _runtime()
    summary = rt.hypotheses.analyze_exclusive(worker=f"{rt.worker_id}:cli")
    print(f"analysed {summary.events:,} events in {summary.seconds:.2f}s: {summary.hypotheses} hypotheses "
          f"({len(summary.created)} new, {len(summary.updated)} changed, {len(summary.retired)} retired)")
    return cmd_hypotheses(argparse.Namespace(json=False, all=False), rt=rt)


def cmd_hypotheses(args, rt=None) -> int:
    from incidentbot.api.schemas import hypotheses_list
    from incidentbot.models import OPEN_STATUSES

    rt = rt or _runtime()
    items = hypotheses_list(rt, status=None if args.all or args.json else ",".join(OPEN_STATUSES))
    if args.json:
        print(json.dumps({"hypotheses": items}, default=str, indent=2))
        return 0
    if not items:
        print("no open hypotheses")
    for h in items:
        print(f"{h['id']:>6}  {h['status']:<9} {h['cause_class']:<14} {h['confidence']:>4.0%}  {h['title']}")
        for line in h["evidence"][:3]:
            print(f"{'':8}- {line}")
        print(f"{'':8}signatures: {', '.join(h['signature_ids'])}" + (f"; runbook: {h['runbook_ids'][0]}" if h["runbook_ids"] else ""))
    return 0


def cmd_explain(args) -> int:
    from incidentbot import signatures

    text = sys.stdin.read() if args.text in (None, "-") else args.text
    exp = signatures.explain(text)
    fp = exp.fingerprint
    print(f"title:       {fp.title}\ncategory:    {fp.category}\ncause class: {fp.cause_class}\nparser:      {exp.parser}\n"
          f"fingerprint: {fp.key} (rules {signatures.RULES_VERSION})")
    if fp.details:
        print("details:     " + ", ".join(f"{k}={v}" for k, v in fp.details))
    print("why:")
    for r in exp.reasons:
        print(f"  - {r}")
    if exp.masked:
        print("masked:")
        for kind, value in exp.masked[:40]:
            print(f"  {kind:<10} {value!r}")
    print("template:\n  " + fp.template.replace("\n", "\n  "))
    return 0


def cmd_runbooks(args) -> int:
    from incidentbot.runbooks.check import main_check

    return main_check([args.dir, *(f"--samples={f}" for f in args.samples or ())])


def cmd_simulate(args) -> int:
    from incidentbot.simulate import simulate, write_scenario

    scenario = simulate(args.seed, size=args.size)
    write_scenario(scenario, Path(args.out))
    print(f"wrote {len(scenario.events):,} events to {args.out} (truth beside it)")
    return 0


def cmd_digest(args) -> int:
    from incidentbot.digest import preview

    rt = _runtime()
    try:
        print(preview(rt, week=args.week))
    except ValueError as exc:
        print(f"incidentbot: --week: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_migrate(args) -> int:
    from incidentbot.db import Database

    db = Database(load_settings().database_url)
    db.migrate()
    print("database schema is up to date")
    return 0


def cmd_prune(args) -> int:
    from incidentbot.services.prune import prune
    from incidentbot.settings import parse_duration

    rt = _runtime()
    n = prune(rt.db, older_than=parse_duration(args.older_than), clock=rt.clock)
    print(f"pruned {n:,} raw events older than {args.older_than}; signature and hypothesis history kept")
    return 0


def _duration_arg(text: str) -> str:
    from incidentbot.settings import parse_duration

    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="incidentbot", description="Failure signatures, hypotheses and votes for GPU training fleets.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the service (HTTP API, Slack app, workers)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--demo", action=argparse.BooleanOptionalAction, default=False,
                   help="feed a simulated incident into the local console (writes simulated events: never without it)")
    s.add_argument("--allow-remote", action="store_true", help="let the local console listen on a non-loopback address")
    s.add_argument("--workers", type=int, default=1, help="worker processes (needs Slack credentials; default 1)")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("ingest", help="ingest events from a JSON-lines file (or -)")
    s.add_argument("file")
    s.add_argument("--url", help="post to a running service instead of writing the database")
    s.add_argument("--token", help="bearer token for --url (default: $INCIDENTBOT_TOKEN or the first ingest token)")
    s.add_argument("--batch", type=int, default=1000)
    s.add_argument("--torchelastic", action="store_true", help="FILE is a torchelastic error file (@record's JSON)")
    s.add_argument("--job-id")
    s.add_argument("--rank", type=int)
    s.add_argument("--host")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("analyze", help="run hypothesis analysis now and print a summary")
    s.set_defaults(func=cmd_analyze)

    s = sub.add_parser("hypotheses", help="list hypotheses")
    s.add_argument("--json", action="store_true")
    s.add_argument("--all", action="store_true", help="include resolved, rejected and retired ones")
    s.set_defaults(func=cmd_hypotheses)

    s = sub.add_parser("explain", help="show how a failure text is grouped")
    s.add_argument("text", nargs="?", default="-")
    s.set_defaults(func=cmd_explain)

    s = sub.add_parser("digest", help="weekly digest")
    s.add_argument("--preview", action="store_true", required=True, help="render to stdout, post nothing")
    s.add_argument("--week", help="ISO week like 2025-W03 (default: the last full week)")
    s.set_defaults(func=cmd_digest)

    s = sub.add_parser("runbooks", help="runbook tools")
    rs = s.add_subparsers(dest="runbooks_command", required=True)
    c = rs.add_parser("check", help="validate runbooks; non-zero exit on any error")
    c.add_argument("dir", nargs="?", default="runbooks")
    c.add_argument("--samples", action="append", metavar="FILE",
                   help="sample failure texts every pattern is also tried on: one per line, or .jsonl with \"text\"")
    c.set_defaults(func=cmd_runbooks)

    s = sub.add_parser("simulate", help="write a simulated incident scenario as events.jsonl (+ truth)")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--size", default="small", help="small, medium, large or an event count")
    s.add_argument("--out", default="events.jsonl")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("migrate", help="upgrade the database schema (serve does this on start too)")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("prune", help="delete old raw events, keeping signature and hypothesis history")
    s.add_argument("--older-than", default="90d", type=_duration_arg, help="a duration like 90d, 12w or 36h")
    s.set_defaults(func=cmd_prune)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "size", None) and str(args.size).isdigit():
        args.size = int(args.size)
    try:
        return args.func(args) or 0
    except (SettingsError, SchemaAheadError) as exc:
        print(f"incidentbot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
