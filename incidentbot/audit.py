"""One log line per event of interest, emitted when the transaction that made it commits.

Hypothesis timeline entries (created, evidence changed, merged, split, resolved, rejected,
reopened, regressed, runbook linked, poll closed …), polls opened, and signatures muted or merged
are written through the ORM, so one session hook sees every one of them; the few writes that
bypass the ORM (new signatures at ingest, posts delivered to Slack, a prune) add their line with
:func:`note`. Nothing is logged for work that was rolled back.
"""

from __future__ import annotations

import logging

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from incidentbot.models import HypothesisLog, Poll, Signature

__all__ = ["install", "note"]

log = logging.getLogger("incidentbot.audit")
_installed = False


def install() -> None:
    """Idempotent: the hooks are global to SQLAlchemy sessions."""
    global _installed
    if _installed:
        return
    event.listen(Session, "after_flush", _collect)
    event.listen(Session, "after_commit", _emit)
    event.listen(Session, "after_soft_rollback", _drop)
    _installed = True


def note(session: Session, line: str) -> None:
    """Log ``line`` when this session's transaction commits (for writes that bypass the ORM)."""
    session.info.setdefault("audit", []).append(line)


def _collect(session: Session, _context) -> None:
    lines = [line for obj in session.new if (line := _created(obj))]
    lines += [line for obj in session.dirty if (line := _changed(obj))]
    if lines:
        session.info.setdefault("audit", []).extend(lines)


def _emit(session: Session) -> None:
    for line in session.info.pop("audit", ()):
        log.info("%s", line)


def _drop(session: Session, _previous) -> None:
    session.info.pop("audit", None)


def _created(obj) -> str | None:
    if isinstance(obj, HypothesisLog):
        by = f" by {obj.actor}" if obj.actor else ""
        return f"H-{obj.hypothesis_id} {obj.kind}{by}: {(obj.text or '')[:300]}"
    if isinstance(obj, Poll):
        return f"P-{obj.id} opened by {obj.creator}: {(obj.question or '')[:200]}"
    return None


def _changed(obj) -> str | None:
    state = inspect(obj)
    if isinstance(obj, Signature):
        if state.attrs.muted_until.history.added:
            until = obj.muted_until
            return f"S-{obj.id} " + (f"muted until {until:%Y-%m-%d %H:%M} UTC" if until else "unmuted")
        if state.attrs.merged_into.history.added:
            return f"S-{obj.id} " + (f"merged into S-{obj.merged_into}" if obj.merged_into else "unmerged")
    return None
