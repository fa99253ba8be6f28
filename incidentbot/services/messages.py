"""The outbox's messages, named once: what each row is, where it goes, and the keys it lives under.

A row says *what* to show (a signature's alert, a poll, a thread note with its facts), never the
Slack text: the publisher (``slack/publish.py``) renders it at delivery time from the current
state, so these constructors are plain data and the services that write them speak no mrkdwn.

Keys: ``message_key`` names the Slack message a post creates or an edit changes (``SlackMessage``
rows are keyed by it); ``thread_key`` the message whose thread a post replies in; ``dedupe_key``
makes a second row for the same thing a no-op (one post per alert, poll, announcement and digest;
one pending edit per message).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = [
    "Message",
    "alert",
    "alert_edit",
    "alert_key",
    "announcement",
    "digest",
    "edit",
    "poll",
    "poll_edit",
    "poll_key",
    "signature_rollup",
    "signature_rollup_edit",
    "thread_note",
    "NOTE_KINDS",
]

# The thread notes the publisher knows how to say (slack/views.thread_note_text).
NOTE_KINDS = ("resolved", "regressed", "spread")


@dataclass(frozen=True, slots=True)
class Message:
    op: Literal["post", "update"]
    channel: str | None  # None for an edit: it goes wherever its message was posted
    payload: dict[str, Any]  # {"render": kind, ...ids and facts}: what the publisher renders
    message_key: str | None = None
    thread_key: str | None = None
    dedupe_key: str | None = None


def alert_key(signature_id: int) -> str:
    return f"alert:S-{signature_id}"


def poll_key(poll_id: int) -> str:
    return f"poll:P-{poll_id}"


def _post(channel: str, key: str, payload: dict[str, Any]) -> Message:
    return Message(op="post", channel=channel, payload=payload, message_key=key, dedupe_key=f"post:{key}")


def edit(message: Message) -> Message:
    """The edit of ``message`` in place: it renders the latest state, so one pending edit per
    message is enough (a claimed edit leaves the slot, see ``OutboxWorker._claim``)."""
    if message.message_key is None:
        raise ValueError("only a message with a message_key can be edited")
    return replace(message, op="update", channel=None, thread_key=None, dedupe_key=f"update:{message.message_key}")


def alert(*, channel: str, signature_id: int) -> Message:
    """A new signature's alert, edited in place as its counts grow."""
    return _post(channel, alert_key(signature_id), {"render": "signature_alert", "signature_id": signature_id})


def alert_edit(*, signature_id: int) -> Message:
    return edit(alert(channel="", signature_id=signature_id))


def signature_rollup(*, channel: str, quota_key: str) -> Message:
    """One message that counts a flood's new signatures beyond the alert quota
    (``services/alert_quota.py``); ``quota_key`` is its ``NewSignatureQuota`` row."""
    return _post(channel, f"rollup:{quota_key}", {"render": "signature_rollup", "quota": quota_key})


def signature_rollup_edit(*, quota_key: str) -> Message:
    return edit(signature_rollup(channel="", quota_key=quota_key))


def announcement(*, channel: str, hypothesis_id: int) -> Message:
    """A new hypothesis the analysis is fairly sure of, posted once."""
    return _post(channel, f"hyp:H-{hypothesis_id}", {"render": "hypothesis", "hypothesis_id": hypothesis_id})


def poll(*, channel: str, poll_id: int) -> Message:
    return _post(channel, poll_key(poll_id), {"render": "poll", "poll_id": poll_id})


def poll_edit(*, poll_id: int) -> Message:
    """The tally's edit (the vote service debounces it)."""
    return edit(poll(channel="", poll_id=poll_id))


def digest(*, channel: str, week: str) -> Message:
    """The weekly digest of ``week`` for ``channel``: its claim in ``DigestRun`` and this row are
    written in one transaction, and the key makes a second row for the same week a no-op."""
    key = f"digest:{channel}:{week}"
    return Message(
        op="post",
        channel=channel,
        payload={"render": "digest", "week": week, "channel": channel},
        message_key=key,
        dedupe_key=key,
    )


def thread_note(*, channel: str | None, thread_key: str, note: str, **facts: Any) -> Message:
    """A reply in the thread of ``thread_key``'s message (at the top level when that message was
    never posted). ``note`` is one of :data:`NOTE_KINDS`; ``facts`` are what it says, as plain
    values (JSON): the publisher escapes and words them."""
    if note not in NOTE_KINDS:
        raise ValueError(f"unknown thread note {note!r}; expected one of {', '.join(NOTE_KINDS)}")
    return Message(op="post", channel=channel, payload={"render": "note", "note": note, **facts}, thread_key=thread_key)
