"""Signatures in the database: listing, merges people make (and undo), mutes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from incidentbot.db import Database
from incidentbot.models import Decision, Signature, utcnow

__all__ = ["SignatureService", "SignatureNotFound", "canonical_map", "merge_in_session"]


class SignatureNotFound(LookupError):
    pass


def canonical_map(session: Session) -> dict[int, int]:
    """signature id → the signature it is merged into (following chains); only merged ids appear."""
    merged = dict(
        session.execute(
            select(col(Signature.id), col(Signature.merged_into)).where(col(Signature.merged_into).is_not(None))
        ).all()
    )
    out = {}
    for sid in merged:
        target, hops = merged[sid], 0
        while target in merged and hops < 64:
            target, hops = merged[target], hops + 1
        out[sid] = target
    return out


def merge_in_session(
    session: Session, source: int, target: int, *, actor: str | None, quiet_if_done: bool = False
) -> bool:
    """Merge ``source`` into ``target`` inside the caller's transaction and record the decision (so
    ``unmerge`` can undo it). Returns whether anything changed; with ``quiet_if_done`` a merge that
    already holds (or would make a cycle) is skipped instead of refused."""
    if source == target:
        raise ValueError("a signature cannot be merged into itself")
    src, dst = session.get(Signature, source), session.get(Signature, target)
    if src is None or dst is None:
        raise SignatureNotFound(f"S-{source if src is None else target} does not exist")
    cmap = canonical_map(session)
    final = cmap.get(target, target)  # dst is the row of target
    if final == source or cmap.get(source, source) == final:
        if quiet_if_done:
            return False
        if final == source:
            raise ValueError(f"S-{target} is already merged into S-{source}")
    src.merged_into = final
    # Re-point signatures that were merged into the source.
    for s in session.scalars(select(Signature).where(col(Signature.merged_into) == source)):
        s.merged_into = final
    session.add(Decision(kind="merge_signatures", signature_ids=[source, target], actor=actor))
    return True


class SignatureService:
    def __init__(self, db: Database):
        self.db = db

    def get(self, session: Session, sid: int) -> Signature:
        sig = session.get(Signature, sid)
        if sig is None:
            raise SignatureNotFound(f"S-{sid} does not exist")
        return sig

    def members(self, session: Session, sid: int) -> list[Signature]:
        """The signature and every signature merged into it."""
        cmap = canonical_map(session)
        ids = [sid] + [s for s, t in cmap.items() if t == sid]
        return list(session.scalars(select(Signature).where(col(Signature.id).in_(ids))))

    def merge(self, source: int, target: int, *, actor: str | None) -> None:
        """Merge signature ``source`` into ``target``: later events of either land in ``target``."""
        if source == target:
            raise ValueError("a signature cannot be merged into itself")
        with self.db.write() as session:
            self.get(session, source), self.get(session, target)
            merge_in_session(session, source, target, actor=actor)

    def unmerge(self, source: int, *, actor: str | None) -> int:
        """Undo a merge: ``source`` stands on its own again. Returns the id it was merged into."""
        with self.db.write() as session:
            src = self.get(session, source)
            if src.merged_into is None:
                raise ValueError(f"S-{source} is not merged into another signature")
            previous = src.merged_into
            src.merged_into = None
            # A merge the template engine made is undone in the engine too: texts that read the
            # absorbed template go to this signature again (imported here: templates.py records
            # its merges through this module).
            from incidentbot.services.templates import restore_template

            restore_template(session, src)
            session.add(Decision(kind="unmerge_signatures", signature_ids=[source, previous], actor=actor))
            return previous

    def mute(
        self, sid: int, *, until: datetime | None, actor: str | None, duration: timedelta | None = None
    ) -> datetime:
        until = until or (utcnow() + (duration or timedelta(days=3650)))
        with self.db.write() as session:
            sig = self.get(session, sid)
            sig.muted_until = until
            session.add(Decision(kind="mute", signature_ids=[sid], actor=actor, active=True))
        return until

    def unmute(self, sid: int) -> None:
        with self.db.write() as session:
            self.get(session, sid).muted_until = None

    def page(self, session: Session, *, limit: int, after: int | None, order: str = "id") -> list[Signature]:
        q = select(Signature).where(col(Signature.merged_into).is_(None))
        if order == "top":
            q = q.order_by(col(Signature.count).desc(), col(Signature.id)).limit(limit)
        elif order == "new":
            q = q.order_by(col(Signature.first_seen).desc(), col(Signature.id).desc()).limit(limit)
        else:
            if after is not None:
                q = q.where(col(Signature.id) > after)
            q = q.order_by(col(Signature.id)).limit(limit)
        return list(session.scalars(q))
