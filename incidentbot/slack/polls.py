"""Poll messages: question, one button per option, the tally (and, for open polls, who voted)."""

from __future__ import annotations

from incidentbot.blocks import actions, button, context, cut, esc, fmt_time, header, section

__all__ = ["poll_blocks"]

BAR = 12


def _bar(votes: int, total: int) -> str:
    filled = round(BAR * votes / total) if total else 0
    return "█" * filled + "░" * (BAR - filled)


def poll_blocks(poll: dict, *, voters: dict[int, list[str]], public_url: str) -> tuple[str, list[dict]]:
    pid = poll["id"]
    total = sum(o["votes"] for o in poll["options"])
    is_open = poll["status"] == "open"
    text = f"Poll {pid}: {esc(poll['question'])} ({total} votes{'' if is_open else ', closed'})"
    blocks = [header(f"{'🗳' if is_open else '🔒'} {pid} · {poll['question']}")]
    for o in poll["options"]:
        who = ""
        if not poll["anonymous"] and voters.get(o["id"]):
            names = voters[o["id"]]
            who = (
                "\n"
                + " ".join(f"<@{esc(u)}>" for u in names[:15])
                + (f" +{len(names) - 15}" if len(names) > 15 else "")
            )
        label = esc(o["label"])
        if len(label) > 300 and o.get("hypothesis_id"):
            label = cut(label, 300, more=f" <{public_url}/h/{o['hypothesis_id']}|more>")
        line = f"*{cut(label, 300)}*\n`{_bar(o['votes'], total)}` {o['votes']}{who}"
        accessory = button("Vote", "ib:vote", f"{pid}:{o['id']}") if is_open else None
        blocks.append(section(line, accessory=accessory, block_id=f"opt:{o['id']}"))
    meta = [
        f"{total} {'vote' if total == 1 else 'votes'}",
        "anonymous" if poll["anonymous"] else "open ballot",
        f"opened by <@{esc(poll['creator'])}>",
    ]
    if is_open and poll.get("closes_at"):
        meta.append(f"closes {fmt_time(poll['closes_at'])}")
    if not is_open:
        meta.append(f"closed {fmt_time(poll.get('closed_at'))}")
    blocks.append(context(" · ".join(meta) + (". Click again to change your vote." if is_open else "")))
    outcome = poll.get("outcome") or {}
    if outcome.get("truth"):
        share = outcome.get("share_for_truth")
        verdict = "The room was right." if outcome.get("room_right") else "The room's favourite was not the cause."
        if outcome.get("underdog"):
            verdict = "Underdog win: the least-voted hypothesis was the cause."
        blocks.append(
            section(
                f"*Outcome*: {outcome['truth']} was the cause. {verdict}"
                + (f" {share:.0%} voted for the truth." if share is not None else "")
            )
        )
    if is_open:
        blocks.append(actions([button("Close poll", "ib:vote_close", pid)], block_id=f"poll:{pid}"))
    return text, blocks
