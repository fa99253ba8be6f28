"""Command line: ``incidentbot serve | ingest | analyze | hypotheses | digest | runbooks | explain | simulate | prune``.

Each subcommand imports what it runs inside its own function, so ``--help``, ``explain`` and
``runbooks check`` start without the web stack, the database or the analysis: the local imports
here are for start-up time, none hides an import cycle.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
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


def cmd_ingest(args) -> int:
    import signal

    from incidentbot import logship

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    tty = sys.stderr.isatty()

    def progress(tally, final: bool) -> None:
        if tty:
            sys.stderr.write(
                f"\r{tally.lines:,} lines  accepted {tally.accepted:,}  duplicates {tally.duplicates:,}  "
                f"rejected {tally.rejected:,}  skipped {tally.skipped:,}   "
            )
            sys.stderr.flush()

    stop = {"now": False}

    def on_signal(signum, frame) -> None:  # finish the batch in hand, save the place, exit
        stop["now"] = True

    if args.follow:
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
    try:
        target = logship.choose_target(
            url=args.url, token=args.token, follow=args.follow, log=log, should_stop=lambda: stop["now"]
        )
        log(f"ingest: sending to {target.where}")
        defaults = logship.Defaults(job_id=args.job_id, host=args.host, rank=args.rank)
        if args.torchelastic:
            tally = logship.ingest_torchelastic(
                args.file, target=target, job_id=args.job_id, host=args.host, rank=args.rank, log=log
            )
        elif args.follow:
            if args.file == "-":
                raise logship.TargetError("--follow needs a file or a glob, not -")
            state = Path(args.state) if args.state else logship.default_state_path(args.file)
            log(f"ingest: following {args.file}; place kept in {state}")
            tally = logship.follow(
                args.file,
                target=target,
                defaults=defaults,
                batch=args.batch,
                state_path=state,
                log=log,
                progress=progress,
                poll=args.poll,
                flush_after=args.flush_after,
                should_stop=lambda: stop["now"],
            )
        else:
            tally = logship.ingest_once(
                args.file, target=target, defaults=defaults, batch=args.batch, log=log, progress=progress
            )
    except logship.TargetError as exc:
        if tty:
            sys.stderr.write("\n")
        log(f"incidentbot ingest: {exc}")
        return 2
    if tty:
        sys.stderr.write("\n")
    log(f"ingest: {tally.describe()}; written to {target.where}")
    print(json.dumps(tally.as_summary()))
    return 0 if tally.rejected == 0 else 2


# -- analysis and reading ---------------------------------------------------------------------


def cmd_analyze(args) -> int:
    rt = _runtime()
    summary = rt.hypotheses.analyze_exclusive(worker=f"{rt.worker_id}:cli")
    print(
        f"analysed {summary.events:,} events in {summary.seconds:.2f}s: {summary.hypotheses} hypotheses "
        f"({len(summary.created)} new, {len(summary.updated)} changed, {len(summary.retired)} retired)"
    )
    return cmd_hypotheses(argparse.Namespace(json=False, all=False), rt=rt)


def cmd_hypotheses(args, rt=None) -> int:
    from incidentbot.models import OPEN_STATUSES

    rt = rt or _runtime()
    items = rt.read_model.hypotheses_list(status=None if args.all or args.json else ",".join(OPEN_STATUSES))
    if args.json:
        print(json.dumps({"hypotheses": items}, default=str, indent=2))
        return 0
    if not items:
        print("no open hypotheses")
    for h in items:
        print(f"{h['id']:>6}  {h['status']:<9} {h['cause_class']:<14} {h['confidence']:>4.0%}  {h['title']}")
        for line in h["evidence"][:3]:
            print(f"{'':8}- {line}")
        print(
            f"{'':8}signatures: {', '.join(h['signature_ids'])}"
            + (f"; runbook: {h['runbook_ids'][0]}" if h["runbook_ids"] else "")
        )
    return 0


def cmd_explain(args) -> int:
    from incidentbot import signatures

    text = sys.stdin.read() if args.text in (None, "-") else args.text
    exp = signatures.explain(text)
    fp = exp.fingerprint
    print(
        f"title:       {fp.title}\ncategory:    {fp.category}\ncause class: {fp.cause_class}\nparser:      {exp.parser}\n"
        f"fingerprint: {fp.key} (rules {signatures.RULES_VERSION})"
    )
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
    if not args.no_database:
        _explain_learned(fp)
    return 0


def _explain_learned(fp) -> None:
    """What the template engine has learned about texts like this one, from the database."""
    from sqlalchemy import select
    from sqlmodel import col

    from incidentbot.db import Database
    from incidentbot.models import Signature
    from incidentbot.services.templates import TemplateStore, describe_variable

    try:
        db = Database(load_settings().database_url)
        with db.read() as session:
            family, template, key = TemplateStore().preview(session, fp)
            sid = session.scalar(select(col(Signature.id)).where(col(Signature.fingerprint) == key))
            target = session.scalar(select(col(Signature.merged_into)).where(col(Signature.id) == sid)) if sid else None
        db.dispose()
    except Exception as exc:  # the text's own explanation above stands without a database
        print(f"learned templates: not read ({type(exc).__name__}: {str(exc)[:120]})")
        return
    print(
        "learned template ("
        + (f"S-{sid}" if sid else "no signature yet")
        + (f", merged into S-{target}" if target else "")
        + "):"
    )
    print("  " + template.replace(" \n ", "\n  "))
    shape = sum(t == "<*>" for t in fp.tokens)
    print(f"variable tokens: {shape} by their shape; judged from the data (family of {family.texts} texts):")
    for line in describe_variable(family) or ["(none yet)"]:
        print(f"  - {line}")


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
    p = argparse.ArgumentParser(
        prog="incidentbot", description="Failure signatures, hypotheses and votes for GPU training fleets."
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the service (HTTP API, Slack app, workers)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="feed a simulated incident into the local console (writes simulated events: never without it)",
    )
    s.add_argument("--allow-remote", action="store_true", help="let the local console listen on a non-loopback address")
    s.add_argument("--workers", type=int, default=1, help="worker processes (needs Slack credentials; default 1)")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser(
        "ingest",
        help="ingest events from JSON lines or plain log files (FILE, GLOB or -)",
        description="Plain log text (torchrun, [rankN]: lines, NCCL, syslog, journalctl, dmesg, SLURM) or "
        "JSON lines (events, or journalctl -o json), detected per file. Without --url: "
        "$INCIDENTBOT_DATABASE_URL, else a service at $INCIDENTBOT_URL (default "
        "http://127.0.0.1:8000), else ./incidentbot.db if it exists, else an error.",
    )
    s.add_argument(
        "file", help="a file, a glob (quote it) or - for standard input; with --torchelastic a file or directory"
    )
    s.add_argument("--url", help="post to a running service instead of writing the database")
    s.add_argument("--token", help="bearer token for --url (default: $INCIDENTBOT_TOKEN or the first ingest token)")
    s.add_argument("--batch", type=int, default=1000)
    s.add_argument(
        "--torchelastic",
        action="store_true",
        help="FILE is a torchelastic error file (@record's JSON) or a torchelastic log directory",
    )
    s.add_argument(
        "--job-id", help="job for records that do not name one (default: the file's name; torchelastic: the run id)"
    )
    s.add_argument("--rank", type=int, help="rank for records whose prefix gives none")
    s.add_argument("--host", help="host for records that name none (torchelastic: default this machine's hostname)")
    s.add_argument(
        "--follow", action="store_true", help="keep reading: tail the file(s) and new ones matching the glob"
    )
    s.add_argument(
        "--state", help="where --follow keeps its place (default $XDG_STATE_HOME/incidentbot/follow-<hash>.json)"
    )
    s.add_argument("--poll", type=float, default=0.5, help=argparse.SUPPRESS)
    s.add_argument(
        "--flush-after",
        type=float,
        default=3.0,
        help="--follow: seconds a file may be quiet before its last record counts as complete (default 3)",
    )
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("analyze", help="run hypothesis analysis now and print a summary")
    s.set_defaults(func=cmd_analyze)

    s = sub.add_parser("hypotheses", help="list hypotheses")
    s.add_argument("--json", action="store_true")
    s.add_argument("--all", action="store_true", help="include resolved, rejected and retired ones")
    s.set_defaults(func=cmd_hypotheses)

    s = sub.add_parser("explain", help="show how a failure text is grouped")
    s.add_argument("text", nargs="?", default="-")
    s.add_argument("--no-database", action="store_true", help="do not read the templates learned so far")
    s.set_defaults(func=cmd_explain)

    s = sub.add_parser("digest", help="weekly digest")
    s.add_argument("--preview", action="store_true", required=True, help="render to stdout, post nothing")
    s.add_argument("--week", help="ISO week like 2025-W03 (default: the last full week)")
    s.set_defaults(func=cmd_digest)

    s = sub.add_parser("runbooks", help="runbook tools")
    rs = s.add_subparsers(dest="runbooks_command", required=True)
    c = rs.add_parser("check", help="validate runbooks; non-zero exit on any error")
    c.add_argument("dir", nargs="?", default="runbooks")
    c.add_argument(
        "--samples",
        action="append",
        metavar="FILE",
        help='sample failure texts every pattern is also tried on: one per line, or .jsonl with "text"',
    )
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
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # here, not at exit: a reader that left (`| head`) shows as BrokenPipeError
    except BrokenPipeError:
        # The reader closed the pipe (`incidentbot hypotheses --json | head`): not an error of ours.
        # Point stdout at /dev/null so the interpreter's own final flush does not raise again, and
        # exit the way a process killed by SIGPIPE does, so `set -o pipefail` still sees it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _run(argv: list[str] | None) -> int:
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
