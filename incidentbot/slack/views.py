"""What the bot shows: alerts, hypotheses, lists, help — from plain records to Block Kit."""

from __future__ import annotations

from collections.abc import Sequence

from incidentbot.blocks import (
    actions,
    button,
    code,
    context,
    cut,
    esc,
    fields,
    fmt_time,
    header,
    limit_blocks,
    link,
    plural,
    section,
)

__all__ = [
    "signature_alert",
    "signature_rollup",
    "thread_note_text",
    "hypothesis_blocks",
    "signature_blocks",
    "hypothesis_list",
    "signature_list",
    "help_blocks",
    "notice",
    "SUBCOMMANDS",
]

CAUSE_EMOJI = {
    "hardware": ":wrench:",
    "network": ":satellite_antenna:",
    "software": ":bug:",
    "data": ":floppy_disk:",
    "infrastructure": ":building_construction:",
    "unknown": ":grey_question:",
}

SUBCOMMANDS: list[tuple[str, str]] = [
    ("list", "open hypotheses, newest activity first"),
    ("show H-n | S-n | P-n", "evidence, scope, signatures, runbook, votes, resolution"),
    ("signatures [new|top]", "the newest or most frequent failure signatures"),
    ("analyze", "re-run the hypothesis analysis now"),
    ("vote [H-a H-b …] [question] [--closes 2h] [--open]", "poll the channel on competing hypotheses"),
    ("vote close P-n", "close a poll (its creator or an admin)"),
    ("vote stats", "your own voting record (only you see it)"),
    ("resolve H-n", "record the cause and fix (opens a form)"),
    ("reject H-n REASON", "record that a hypothesis is wrong"),
    ("reopen H-n", "reopen a resolved or rejected hypothesis"),
    ("merge H-a H-b | S-a S-b", "one cause / one failure mode (admins)"),
    ("split H-n S-x [S-y …]", "take signatures out into their own hypothesis (admins)"),
    ("unmerge S-n", "undo a signature merge (admins)"),
    ("mute S-n [for 24h]", "stop alert updates for a signature (admins)"),
    ("unmute S-n", "resume alerts"),
    ("link H-n|S-n RUNBOOK", "attach a runbook; `unlink` removes one"),
    ("runbooks [words]", "search runbooks"),
    ("digest preview [2025-W03]", "last week's digest (the last full week), or the week named; only to you"),
    ("help", "this list"),
]


def notice(text: str) -> tuple[str, list[dict]]:
    return text, [section(text)]


def help_blocks(command: str) -> tuple[str, list[dict]]:
    lines = "\n".join(f"`{esc(command)} {esc(c)}` — {esc(d)}" for c, d in SUBCOMMANDS)
    return f"{command} help", [
        section(
            f"*incidentbot* groups training failures into signatures (S-n), proposes "
            f"root-cause hypotheses (H-n) and polls the room (P-n).\n\n{lines}"
        )
    ]


def _runbook_line(rb: dict | None) -> str:
    if not rb:
        return "none matched yet"
    title = esc(rb["title"])
    return f"<{rb['url']}|{title}>" if rb.get("url") else f"*{title}* (`{esc(rb['id'])}`)"


def _runbook_steps(rb: dict) -> str:
    """The runbook's summary: title, severity, owner and its first Confirm and Act steps."""
    return esc(cut(rb["summary"], 1200))


def _signature_facts(sig: dict) -> list[tuple[str, str]]:
    return [
        ("Events", f"{sig['count']:,}"),
        # A host-level fault (an Xid, a kernel line) has no rank: "0 ranks" would read as a count.
        (
            "Where",
            " · ".join(
                [plural(sig["job_count"], "job"), plural(sig["host_count"], "host")]
                + ([plural(sig["rank_count"], "rank")] if sig.get("rank_count") else [])
            ),
        ),
        ("First seen", fmt_time(sig["first_seen"])),
        ("Last seen", fmt_time(sig["last_seen"])),
        ("Kind", f"{CAUSE_EMOJI.get(sig['cause_class'], '')} {esc(sig['category'])} · {esc(sig['cause_class'])}"),
    ]


def signature_alert(sig: dict, *, runbook: dict | None, public_url: str, muted: bool = False) -> tuple[str, list[dict]]:
    """The channel message for a signature; re-rendered in place as its counts grow."""
    sid = sig["id"]
    title = sig["title"]
    text = f"New failure signature {sid}: {esc(title)} ({plural(sig['count'], 'event')})"
    blocks = [
        header(f"{sid} · {title}"),
        fields(_signature_facts(sig) + [("Runbook", _runbook_line(runbook))]),
        section(code(sig.get("example") or sig["template"], 1200)),
    ]
    if muted:
        blocks.append(context(":no_bell: muted: counts are no longer updated here"))
    blocks.append(
        actions(
            [
                button("Show", "ib:show", sid),
                button("Mute 24h", "ib:mute", sid),
                button("Start vote", "ib:vote_start", sid, style="primary"),
                button("Full record", "ib:link", url=f"{public_url}/v1/signatures/{sid}"),
            ],
            block_id=f"alert:{sid}",
        )
    )
    return text, blocks


def thread_note_text(note: dict) -> str:
    """The text of a thread note (``services.messages.thread_note``) from its facts: untrusted
    ones escaped here, at delivery, so the services that write notes speak no mrkdwn."""
    kind, hid = note.get("note"), note.get("hypothesis_id")
    if kind == "resolved":
        return f":white_check_mark: H-{hid} resolved by <@{note.get('actor', '')}>: {esc(note.get('cause', ''))}"
    if kind == "regressed":
        fixed_in = note.get("fixed_in") or ""
        return (
            f":rotating_light: Regression: H-{hid} was resolved by <@{note.get('by', '')}> "
            f"({esc(note.get('cause', ''))}; fix: {esc(note.get('fix', '') or '—')}"
            + (f"; fixed in {esc(fixed_in)}" if fixed_in else "")
            + f") but it is back in {esc(note.get('where', ''))}."
        )
    if kind == "spread":
        spread = []
        for what in ("jobs", "hosts"):
            if note.get(what):
                now, was = note[what]
                spread.append(f"{now:,} {what} (was {was:,})")
        return f":arrow_upper_right: S-{note.get('signature_id')} spread: now in " + " and ".join(spread) + "."
    raise ValueError(f"unknown thread note {kind!r}")


def signature_rollup(
    *, job_id: str | None, rolled: int, sample: Sequence[str], since, per_job: int, window: str, command: str
) -> tuple[str, list[dict]]:
    """One message for the new signatures a flood made beyond the alert quota (edited in place
    as the count grows), instead of an alert each."""
    where = f"in job `{esc(cut(job_id, 200))}`" if job_id is not None else "across jobs"
    why = (
        f"more than {per_job} in {window}" if job_id is not None else "the channel's limit for this window was reached"
    )
    text = f"{rolled:,} more new failure {'mode' if rolled == 1 else 'modes'} {where} since {fmt_time(since)}"
    names = ", ".join(sample) + (f" and {rolled - len(sample):,} more" if rolled > len(sample) else "")
    blocks = [
        section(f":rotating_light: *{text}*, not announced one by one ({why}).\n{names}"),
        context(
            f"`{command} signatures new` lists them; `{command} merge S-a S-b` joins ones that are one failure mode."
        ),
    ]
    return text, blocks


def _scope_text(scope: dict) -> str:
    if not scope:
        return "fleet-wide"
    parts = []
    for key, values in scope.items():
        vals = list(values)[:8]
        more = f" +{len(values) - 8}" if len(values) > 8 else ""
        parts.append(f"{esc(key)}: {esc(', '.join(map(str, vals)))}{more}")
    return "\n".join(parts)


def hypothesis_blocks(
    h: dict,
    *,
    signatures: Sequence[dict],
    runbooks: Sequence[dict],
    polls: Sequence[dict],
    public_url: str,
    timeline: Sequence[dict] = (),
) -> tuple[str, list[dict]]:
    hid = h["id"]
    text = f"{hid}: {esc(h['title'])} ({h['status']})"
    blocks = [
        header(f"{hid} · {h['title']}"),
        fields(
            [
                ("Status", esc(h["status"])),
                ("Cause class", f"{CAUSE_EMOJI.get(h['cause_class'], '')} {esc(h['cause_class'])}"),
                ("Confidence", f"{h['confidence']:.0%}"),
                ("Events", f"{h['event_count']:,}"),
                ("Scope", _scope_text(h.get("scope") or {})),
                ("Runbook", _runbook_line(runbooks[0] if runbooks else None)),
            ]
        ),
    ]
    if h.get("evidence"):
        blocks.append(section("*Why*\n" + "\n".join(f"• {esc(line)}" for line in h["evidence"][:8])))
    if runbooks and runbooks[0].get("summary"):
        # (the runbook's link is in the fields above)
        blocks.append(section(_runbook_steps(runbooks[0])))
    if signatures:
        sig_lines = [f"`{s['id']}` {esc(cut(s['title'], 120))} — {s['count']:,} events" for s in signatures[:10]]
        if len(signatures) > 10:
            sig_lines.append(f"… and <{public_url}/h/{hid}|{len(signatures) - 10} more>")
        blocks.append(section("*Signatures*\n" + "\n".join(sig_lines)))
    res = h.get("resolution") or {}
    if res.get("cause") or res.get("rejected_reason"):
        if res.get("rejected_reason"):
            blocks.append(section(f"*Rejected* by <@{esc(res.get('by', ''))}>: {esc(res['rejected_reason'])}"))
        else:
            link_text = (
                f" · {link(res['link'], 'link')}" if res.get("link", "").startswith(("http://", "https://")) else ""
            )
            fixed = f" · fixed in `{esc(res['fixed_in'])}`" if res.get("fixed_in") else ""
            blocks.append(
                section(
                    f"*Resolution* by <@{esc(res.get('by', ''))}>: {esc(res.get('cause', ''))}\n"
                    f"*Fix*: {esc(res.get('fix', ''))}{fixed}{link_text}"
                )
            )
    for p in polls[:3]:
        tally = ", ".join(f"{esc(o['label'][:40])}: {o['votes']}" for o in p["options"] if o["votes"])
        blocks.append(
            context(
                f"Poll {p['id']} ({p['status']}): {tally or 'no votes yet'}"
                + (f" — {esc(p['outcome_text'])}" if p.get("outcome_text") else "")
            )
        )
    if timeline:
        blocks.append(
            context(
                "\n".join(f"{fmt_time(t['at'])} {esc(t['kind'])}: {esc(cut(t['text'], 150))}" for t in timeline[-5:])
            )
        )
    blocks.append(
        actions(
            [
                button("Start vote", "ib:vote_start", hid, style="primary"),
                button("Resolve", "ib:resolve", hid),
                button("View timeline", "ib:link", url=f"{public_url}/h/{hid}"),
            ],
            block_id=f"hyp:{hid}",
        )
    )
    return text, limit_blocks(blocks)


def signature_blocks(
    sig: dict, *, runbooks: Sequence[dict], hypothesis: dict | None, explain: dict | None, public_url: str
) -> tuple[str, list[dict]]:
    text = f"{sig['id']}: {esc(sig['title'])}"
    blocks = [
        header(f"{sig['id']} · {sig['title']}"),
        fields(
            _signature_facts(sig)
            + [
                (
                    "Hypothesis",
                    f"`{hypothesis['id']}` {esc(cut(hypothesis['title'], 100))}" if hypothesis else "none yet",
                )
            ]
        ),
        section("*Template*\n" + code(sig["template"], 1500, more_url=f"{public_url}/v1/signatures/{sig['id']}")),
    ]
    if explain:
        blocks.append(context("Grouped by " + esc(explain["parser"]) + ": " + esc("; ".join(explain["reasons"][:3]))))
    if runbooks:
        blocks.append(
            section(
                "*Runbook*: "
                + _runbook_line(runbooks[0])
                + ("\n" + _runbook_steps(runbooks[0]) if runbooks[0].get("summary") else "")
            )
        )
    if sig.get("merged_from"):
        blocks.append(context("Merged here: " + ", ".join(sig["merged_from"])))
    return text, blocks


def hypothesis_list(items: Sequence[dict], *, command: str, total: int | None = None) -> tuple[str, list[dict]]:
    if not items:
        return "No open hypotheses.", [
            section(f"No open hypotheses. `{esc(command)} signatures` shows what has been seen.")
        ]
    total = len(items) if total is None else total
    blocks = [section(f"*{plural(total, 'open hypothesis', 'open hypotheses')}*, newest activity first")]
    for h in items[:20]:
        first = esc(cut(h["evidence"][0], 200)) if h.get("evidence") else ""
        blocks.append(
            section(
                f"`{h['id']}` *{esc(cut(h['title'], 200))}*\n{CAUSE_EMOJI.get(h['cause_class'], '')} "
                f"{esc(h['cause_class'])} · {h['confidence']:.0%} · {h['status']} · "
                f"{', '.join(h['signature_ids'][:6])}\n{first}",
                accessory=button("Show", "ib:show", h["id"]),
            )
        )
    if total > 20:
        blocks.append(context(f"… and {total - 20} more: see GET /v1/hypotheses"))
    return f"{total} open hypotheses", limit_blocks(blocks)


def signature_list(items: Sequence[dict], *, label: str) -> tuple[str, list[dict]]:
    if not items:
        return "No signatures yet.", [section("No failure signatures yet.")]
    lines = [
        f"`{s['id']}` {esc(cut(s['title'], 150))} — {s['count']:,} events, {plural(s['job_count'], 'job')}, last {fmt_time(s['last_seen'])}"
        for s in items[:25]
    ]
    return f"{label} signatures", [section(f"*{esc(label)} signatures*"), section("\n".join(lines))] + (
        [context(f"… and {len(items) - 25} more")] if len(items) > 25 else []
    )
