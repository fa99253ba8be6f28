"""The template engine with its families in the database: every replica and restart groups alike.

``TemplateStore.place`` runs inside the ingest transaction. Texts whose (partition, tokens) this
process has placed before are one dict look-up. The others are placed under a lock on their
buckets (``TemplateBucket`` rows: ``INSERT … ON CONFLICT DO NOTHING`` then ``SELECT … FOR
UPDATE``, in key order, before any signature row is touched), so two replicas decide about one
bucket one after the other, each from the families the other committed. On SQLite writers are
serialised anyway (``BEGIN IMMEDIATE``).

A remembered answer may name a signature that another replica's generalisation has since merged
into another: that is harmless, because merges are followed wherever signatures are read, and the
answer never changes meaning (ids never do).

When a family generalises, ``apply_merges`` records each collapse as a signature merge, exactly as
a person's merge is recorded (a ``Decision`` row, undoable with ``unmerge``), brings the surviving
signature's template and its judged-variable tokens up to date, and edits the Slack alerts already
posted for either signature in place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, delete, select, update
from sqlmodel import col

from incidentbot import audit
from incidentbot.models import Outbox, Signature, SlackMessage, TemplateBucket, TemplateFamily, table_of, utcnow
from incidentbot.services import messages
from incidentbot.services.outbox import queue
from incidentbot.services.signatures import merge_in_session
from incidentbot.services.sql import insert_for
from incidentbot.signatures import DEFAULT_PARAMS, Family, Fingerprint, TemplateParams, assign
from incidentbot.signatures.templates import bucket_key

__all__ = ["TemplateStore", "Placement", "ENGINE_ACTOR", "EPOCH_KEY", "describe_variable", "restore_template"]

_FAMILY = table_of(TemplateFamily)
_BUCKET = table_of(TemplateBucket)
ENGINE_ACTOR = "template-engine"  # the actor of merges the engine records
# The bucket row (not a digest: bucket keys are 32 hex digits) whose count is the number of engine
# merges undone so far; every replica forgets its memo when it changes.
EPOCH_KEY = "undone-merges"


@dataclass(slots=True)
class Placement:
    """What placing one batch decided: pure key -> signature fingerprint, the template each new
    signature reads, the collapses to record, and the families whose judged variables changed."""

    signature_of: dict[str, str] = field(default_factory=dict)
    template_of: dict[str, str] = field(default_factory=dict)  # signature fingerprint -> template
    merges: list[tuple[str, str]] = field(default_factory=list)
    generalised: list[Family] = field(default_factory=list)
    learned: dict[str, str] = field(default_factory=dict)  # for the memo, once the transaction commits
    family_of: dict[str, str] = field(default_factory=dict)  # absorbed fingerprint -> its family's key
    epoch: int = 0  # undone engine merges when this batch was placed (see ``restore_template``)


def describe_variable(family: Family) -> list[str]:
    """One line per token the data judged variable: which, what it held, from how many texts."""
    out = []
    for pos, value, distinct, texts in family.judged_variable():
        out.append(f"token {pos + 1} (e.g. {value!r}): {distinct} distinct values in {texts} texts")
    return out


class TemplateStore:
    """One per process (owned by the ingest service)."""

    # Pure key -> signature fingerprint entries kept; past this the memo starts again (a miss is a
    # bucket read under its lock), so a flood of unique texts cannot grow it without bound.
    MEMO_MAX = 100_000

    def __init__(self, params: TemplateParams = DEFAULT_PARAMS) -> None:
        self.params = params
        self._memo: dict[str, str] = {}
        self._epoch = 0

    def remember(self, placement: Placement) -> None:
        """Call after the transaction that placed ``placement`` committed."""
        if placement.epoch != self._epoch or len(self._memo) + len(placement.learned) > self.MEMO_MAX:
            self._memo.clear()
            self._epoch = placement.epoch
        self._memo.update(placement.learned)

    def place(self, session, fps: Iterable[Fingerprint]) -> Placement:
        out = Placement()
        # An undone engine merge (here or in another replica) makes remembered answers stale: a
        # text may belong to the restored signature again. One primary-key read per batch.
        out.epoch = session.scalar(select(_BUCKET.c.families).where(_BUCKET.c.key == EPOCH_KEY)) or 0
        memo = self._memo if out.epoch == self._epoch else {}
        misses: list[Fingerprint] = []
        for fp in fps:
            sig = memo.get(fp.key)
            if sig is None:
                misses.append(fp)
            else:
                out.signature_of[fp.key] = sig
        if not misses:
            return out
        max_tokens = self.params.max_tokens
        by_bucket: dict[str, list[Fingerprint]] = {}
        for fp in misses:
            by_bucket.setdefault(bucket_key(fp.partition, fp.tokens[:max_tokens]), []).append(fp)
        buckets = sorted(by_bucket)
        families = self._lock_and_load(session, buckets)
        changed: dict[str, Family] = {}
        new: dict[str, Family] = {}
        for b in buckets:
            fams = families.setdefault(b, [])
            for fp in by_bucket[b]:  # in arrival order within the bucket
                got = assign(
                    fams, fp.tokens, partition=fp.partition, params=self.params, claimed=fp.parser != "template"
                )
                out.signature_of[fp.key] = got.fingerprint
                if not got.new_family:
                    # A text that started a family is remembered on its second sight (it then
                    # joins that family): a flood of unique texts does not fill the memo.
                    out.learned[fp.key] = got.fingerprint
                out.template_of.setdefault(got.fingerprint, got.template)
                if got.new_family:
                    new[got.family.key] = got.family
                elif got.changed:
                    changed[got.family.key] = got.family
                if got.merges:
                    out.merges += got.merges
                    for absorbed, _ in got.merges:
                        out.family_of[absorbed] = got.family.key
                    if all(f is not got.family for f in out.generalised):
                        out.generalised.append(got.family)
        now = utcnow()
        if new:
            rows = [dict(f.to_row(), updated_at=now) for k, f in sorted(new.items())]
            session.execute(insert_for(session, _FAMILY).on_conflict_do_nothing(index_elements=["key"]), rows)
            counts: dict[str, int] = {}
            for f in new.values():
                counts[f.bucket] = counts.get(f.bucket, 0) + 1
            # One statement for the batch (executemany): one per bucket was most of a flood's cost.
            session.execute(
                update(_BUCKET)
                .where(_BUCKET.c.key == bindparam("b_key"))
                .values(families=_BUCKET.c.families + bindparam("b_new")),
                [{"b_key": b, "b_new": counts[b]} for b in sorted(counts)],
            )
        rows = [changed[key].to_row() for key in sorted(k for k in changed if k not in new)]
        if rows:
            cols = ("base", "splits", "templates", "variable", "texts", "pins")
            session.execute(
                update(_FAMILY)
                .where(_FAMILY.c.key == bindparam("f_key"))
                .values({**{c: bindparam(f"f_{c}") for c in cols}, "updated_at": now}),
                [{"f_key": r["key"], **{f"f_{c}": r[c] for c in cols}} for r in rows],
            )
        return out

    def preview(self, session, fp: Fingerprint) -> tuple[Family, str, str]:
        """Where ``fp``'s text would be placed now, without writing: (family, template, signature
        fingerprint). Reads the bucket's families as committed (for ``incidentbot explain``)."""
        b = bucket_key(fp.partition, fp.tokens[: self.params.max_tokens])
        fams = [
            Family.from_row(r)
            for r in session.execute(select(_FAMILY).where(_FAMILY.c.bucket == b).order_by(_FAMILY.c.id)).mappings()
        ]
        got = assign(fams, fp.tokens, partition=fp.partition, params=self.params, claimed=fp.parser != "template")
        return got.family, got.template, got.fingerprint

    def _lock_and_load(self, session, buckets: list[str]) -> dict[str, list[Family]]:
        """Claim the buckets (in key order: one lock order for every replica) and read their families."""
        for i in range(0, len(buckets), 500):
            chunk = buckets[i : i + 500]
            session.execute(
                insert_for(session, _BUCKET).on_conflict_do_nothing(index_elements=["key"]),
                [{"key": b, "families": 0} for b in chunk],
            )
            session.execute(
                select(_BUCKET.c.key).where(_BUCKET.c.key.in_(chunk)).order_by(_BUCKET.c.key).with_for_update()
            )
        out: dict[str, list[Family]] = {}
        for i in range(0, len(buckets), 500):
            chunk = buckets[i : i + 500]
            for row in session.execute(
                select(_FAMILY).where(_FAMILY.c.bucket.in_(chunk)).order_by(_FAMILY.c.id)
            ).mappings():
                out.setdefault(row["bucket"], []).append(Family.from_row(row))
        return out

    def apply_merges(self, session, placement: Placement, *, new_ids: set[int]) -> set[int]:
        """Record the batch's collapses as merges; returns the signature ids absorbed."""
        if not placement.merges:
            return set()
        fps = sorted({fp for pair in placement.merges for fp in pair})
        ids = dict(
            session.execute(
                select(col(Signature.fingerprint), col(Signature.id)).where(col(Signature.fingerprint).in_(fps))
            ).all()
        )
        absorbed: set[int] = set()
        touched: set[int] = set()
        for src_fp, dst_fp in placement.merges:
            src, dst = ids.get(src_fp), ids.get(dst_fp)
            if src is None or dst is None or src == dst:
                continue  # a template whose only events were duplicates has no signature
            if merge_in_session(session, src, dst, actor=ENGINE_ACTOR, quiet_if_done=True):
                absorbed.add(src)
                sig = session.get(Signature, src)
                sig.details = dict(sig.details or {}, template_family=placement.family_of.get(src_fp))
                touched.update((src, dst))
                audit.note(session, f"S-{src} merged into S-{dst} by the template engine (a token judged variable)")
        for family in placement.generalised:
            lines = describe_variable(family)
            for template, fp in family.templates.items():
                sid = ids.get(fp) or session.scalar(select(col(Signature.id)).where(col(Signature.fingerprint) == fp))
                if sid is None:
                    continue
                sig = session.get(Signature, sid)
                details = dict(sig.details or {})
                details["judged_variable"] = lines
                sig.details = details
                if sig.parser == "template":  # a parser's own template (its masked lines) stays as it made it
                    sig.template = template.replace(" \n ", "\n")
                touched.add(sid)
        self._edit_alerts(session, touched, absorbed)
        return absorbed

    def _edit_alerts(self, session, touched: set[int], absorbed: set[int]) -> None:
        """Alerts already posted are edited in place; an absorbed signature's alert that has not
        gone out yet is dropped when the signature it joined has one of its own."""
        if not touched:
            return
        keys = {messages.alert_key(sid): sid for sid in touched}
        posted = set(session.scalars(select(col(SlackMessage.key)).where(col(SlackMessage.key).in_(sorted(keys)))))
        pending = set(
            session.scalars(
                select(col(Outbox.message_key)).where(
                    col(Outbox.message_key).in_(sorted(keys)), col(Outbox.op) == "post", col(Outbox.status) == "pending"
                )
            )
        )
        for key in sorted(posted):
            queue(session, messages.alert_edit(signature_id=keys[key]))
        for sid in sorted(absorbed):
            key = messages.alert_key(sid)
            if key in pending and key not in posted:
                target = session.get(Signature, sid).merged_into
                if messages.alert_key(target) in posted or messages.alert_key(target) in pending:
                    session.execute(
                        delete(Outbox).where(
                            col(Outbox.message_key) == key,
                            col(Outbox.op) == "post",
                            col(Outbox.status) == "pending",
                            col(Outbox.claimed_until).is_(None),
                        )
                    )


def restore_template(session, sig: Signature) -> bool:
    """Undo the engine's side of a merge that is being undone: the template that collapsed is
    pinned in its family, so texts that read it (its constant where the family has a variable)
    go to ``sig`` again, in every replica (the epoch row makes them forget remembered answers).
    Inside the caller's transaction; the family's bucket is locked as ``place`` locks it. False
    when ``sig`` was not absorbed by the engine (a person's merge: nothing to restore)."""
    key = (sig.details or {}).get("template_family")
    if not key:
        return False
    bucket = session.scalar(select(_FAMILY.c.bucket).where(_FAMILY.c.key == key))
    if bucket is None:
        return False
    session.execute(
        insert_for(session, _BUCKET).on_conflict_do_nothing(index_elements=["key"]), [{"key": bucket, "families": 0}]
    )
    session.execute(select(_BUCKET.c.key).where(_BUCKET.c.key == bucket).with_for_update())
    row = session.execute(select(_FAMILY).where(_FAMILY.c.key == key)).mappings().one()
    family = Family.from_row(row)
    if not family.restore(sig.fingerprint):
        return False
    session.execute(
        update(_FAMILY).where(_FAMILY.c.key == key).values(pins=family.to_row()["pins"], updated_at=utcnow())
    )
    session.execute(
        insert_for(session, _BUCKET).on_conflict_do_nothing(index_elements=["key"]), [{"key": EPOCH_KEY, "families": 0}]
    )
    session.execute(update(_BUCKET).where(_BUCKET.c.key == EPOCH_KEY).values(families=_BUCKET.c.families + 1))
    return True
