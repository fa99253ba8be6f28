"""Database tables (SQLModel). Events are append-only; everything else is small and mutable.

Ids people type (`S-12`, `H-7`, `P-3`) are these tables' integer keys with a prefix (see ids.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import Table as _Table
from sqlalchemy import inspect as _inspect
from sqlmodel import Field, SQLModel

__all__ = [
    "Ballot",
    "Decision",
    "DigestRun",
    "Event",
    "EventAggregate",
    "Hypothesis",
    "HypothesisLog",
    "HypothesisSignature",
    "JobExposure",
    "Outbox",
    "Poll",
    "PollOption",
    "RunbookLink",
    "Signature",
    "SignatureMember",
    "SlackMessage",
    "KeyValue",
    "TemplateBucket",
    "TemplateFamily",
    "MIXED_GPU",
    "NewSignatureQuota",
    "OPEN_STATUSES",
    "WorkClaim",
    "id_of",
    "table_of",
    "utcnow",
]


# Hypothesis statuses that still need attention (listed, polled, counted as open).
OPEN_STATUSES = ("open", "confirmed", "regressed")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in and out on every dialect (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if value is not None and dialect.name == "sqlite":
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None:
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value


def table_of(model: type[SQLModel]) -> _Table:
    """The Core table of a table model, for Core inserts and column sets (``Model.__table__`` is
    set by SQLAlchemy's mapping at run time but not declared on SQLModel's classes for type checkers)."""
    table = _inspect(model).local_table
    assert isinstance(table, _Table), model
    return table


class _Keyed(Protocol):
    @property
    def id(self) -> int | None: ...


def id_of(row: _Keyed) -> int:
    """The integer key of a row that is stored (loaded, or flushed after ``add``). The models say
    ``int | None`` because a new row has no key until it is flushed; reading one then is a bug."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: flush it first")
    return row.id


def _ts(**kw) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


def _json(default_factory=dict) -> Any:
    return Field(default_factory=default_factory, sa_type=JSON)


class Event(SQLModel, table=True):
    __table_args__ = (
        Index("ix_event_signature_time", "signature_id", "time"),
        Index("ix_event_job", "job_id"),
    )
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    event_id: str = Field(max_length=128, unique=True)
    job_id: str = Field(max_length=256)
    message: str = Field(sa_type=Text)
    time: datetime = _ts()
    received_at: datetime = _ts(default_factory=utcnow)
    source: str = Field(default="api", max_length=32)
    cluster: str | None = Field(default=None, max_length=256)
    host: str | None = Field(default=None, max_length=256)
    gpu: str | None = Field(default=None, max_length=256)
    rank: int | None = Field(default=None, sa_type=BigInteger)
    step: int | None = Field(default=None, sa_type=BigInteger)
    code_version: str | None = Field(default=None, max_length=256)
    versions: dict = _json()
    kind: str | None = Field(default=None, max_length=64)
    attributes: dict = _json()
    signature_id: int = Field(foreign_key="signature.id")
    hypothesis_id: int | None = Field(default=None, index=True)
    # The time the sender gave when it was further from receive time than the allowed skew; the
    # event is then stored at receive time (`time`), so a clock in 2199 cannot pin `last_seen`.
    sent_time: datetime | None = _ts(default=None)
    # Run lineage from the reporter (``run``/``attempt``, or attributes run_id/attempt/restart_count).
    run: str | None = Field(default=None, max_length=256)
    attempt: int | None = Field(default=None, sa_type=BigInteger)
    # The occurrence aggregate (eventaggregate.id) this event is counted in.
    aggregate_id: int | None = Field(default=None, sa_type=BigInteger, index=True)


class EventAggregate(SQLModel, table=True):
    """Occurrences kept at ingest, in the events' transaction: one row per signature x job x host x
    code version x version set x cluster x run x attempt x time bucket. The analysis reads these,
    not raw events, so its cost grows with rows (a 100,000-rank storm on 12,500 hosts is 12,500),
    and it sees the whole history. ``id`` is a 63-bit hash of that key, so ingest knows it without
    a round trip (see services/ingest.py ``aggregate_key``)."""

    __table_args__ = (Index("ix_eventaggregate_signature_last", "signature_id", "last_time"),)
    # BIGINT on SQLite too, not INTEGER: an INTEGER PRIMARY KEY is SQLite's rowid, which orders the
    # table, and a hashed id would scatter every insert over its pages (migration 0008).
    id: int = Field(sa_column=Column(BigInteger(), primary_key=True, autoincrement=False))
    signature_id: int = Field(foreign_key="signature.id")  # as the text made it; merges resolve at loading
    bucket_start: int = Field(sa_type=BigInteger)  # epoch seconds, a multiple of the bucket width
    job_id: str = Field(max_length=256)
    host: str | None = Field(default=None, max_length=256)
    cluster: str | None = Field(default=None, max_length=256)
    code_version: str | None = Field(default=None, max_length=256)
    versions: dict = _json()
    run: str | None = Field(default=None, max_length=256)
    attempt: int | None = Field(default=None, sa_type=BigInteger)
    # the launcher's job name (attributes job_name / slurm_job_name): a job has one, so it is no
    # part of the key; resubmissions of a run share it (migration 0009)
    job_name: str | None = Field(default=None, max_length=256)
    count: int = Field(default=0, sa_type=BigInteger)
    first_time: datetime = _ts()
    last_time: datetime = _ts()
    first_rank: int | None = Field(default=None, sa_type=BigInteger)  # the rank of the earliest event
    gpu: str | None = Field(default=None, max_length=256)  # the one GPU all events name, else MIXED_GPU
    min_step: int | None = Field(default=None, sa_type=BigInteger)
    max_step: int | None = Field(default=None, sa_type=BigInteger)
    hypothesis_id: int | None = Field(default=None, index=True)  # the hypothesis that currently explains it


# EventAggregate.gpu when its events name more than one GPU (or some name none).
MIXED_GPU = "*"


class Signature(SQLModel, table=True):
    __table_args__ = (
        Index("ix_signature_first_seen", "first_seen"),
        Index("ix_signature_count", "count"),
        Index("ix_signature_merged_into", "merged_into"),
    )
    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(max_length=64, unique=True)
    rules_version: str = Field(max_length=32)
    title: str = Field(max_length=512)
    category: str = Field(max_length=64, index=True)
    cause_class: str = Field(max_length=32)
    parser: str = Field(max_length=64)
    template: str = Field(sa_type=Text)
    details: dict = _json()
    example: str = Field(default="", sa_type=Text)
    count: int = Field(default=0, sa_type=BigInteger)
    first_seen: datetime = _ts()
    last_seen: datetime = _ts()
    job_count: int = 0
    host_count: int = 0
    rank_count: int = 0
    rank_sketch: bytes | None = Field(default=None, sa_type=LargeBinary)  # HyperLogLog of job#rank
    # A human merge points here; events keep their own signature and resolve through it.
    merged_into: int | None = Field(default=None, foreign_key="signature.id")
    muted_until: datetime | None = _ts(default=None)
    created_at: datetime = _ts(default_factory=utcnow)
    # What the alert message last showed, so the refresher knows when to edit it.
    alerted_count: int = Field(default=0, sa_type=BigInteger)
    alerted_jobs: int = 0
    alerted_hosts: int = 0
    alerted_at: datetime | None = _ts(default=None)


class TemplateBucket(SQLModel, table=True):
    """One row per bucket of the template engine (partition, token count, first token): a replica
    holds its lock while it places texts in the bucket, so replicas decide one after another."""

    key: str = Field(primary_key=True, max_length=32)
    families: int = 0


class TemplateFamily(SQLModel, table=True):
    """A family of templates the engine learned (signatures.templates.Family, as a row)."""

    id: int | None = Field(default=None, primary_key=True)  # creation order: the order of matching
    key: str = Field(max_length=32, unique=True)
    bucket: str = Field(max_length=32, index=True)
    partition: str = Field(max_length=32)
    base: list = _json(list)
    splits: dict = _json()
    templates: dict = _json()  # template -> signature fingerprint, oldest first
    variable: dict = _json()  # position -> [a value it held, distinct values, texts] (judged variable)
    texts: int = Field(default=0, sa_type=BigInteger)
    pins: dict = _json()  # {"absorbed": {fingerprint: template}, "pinned": {template: fingerprint}}: undo
    updated_at: datetime = _ts(default_factory=utcnow)


class SignatureMember(SQLModel, table=True):
    """Distinct jobs/hosts/ranks per signature: one row each, so counts are exact under replicas."""

    signature_id: int = Field(foreign_key="signature.id", primary_key=True)
    dim: str = Field(max_length=8, primary_key=True)  # job | host | rank
    value: str = Field(max_length=256, primary_key=True)


class Hypothesis(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=512)
    # open | confirmed | resolved | rejected | regressed
    status: str = Field(default="open", max_length=16, index=True)
    cause_class: str = Field(max_length=32)
    kind: str = Field(default="", max_length=32)
    scope: dict = _json()
    confidence: float = 0.0
    evidence: list = _json(list)
    event_count: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)
    last_activity_at: datetime = _ts(default_factory=utcnow)
    owner: str | None = Field(default=None, max_length=64)
    # Set when a person merged this hypothesis into another one.
    merged_into: int | None = Field(default=None)
    resolution: dict = _json()  # cause, fix, link, fixed_in, by, at, rejected_reason
    resolved_at: datetime | None = _ts(default=None)


class HypothesisSignature(SQLModel, table=True):
    hypothesis_id: int = Field(foreign_key="hypothesis.id", primary_key=True)
    signature_id: int = Field(foreign_key="signature.id", primary_key=True)
    event_count: int = Field(default=0, sa_type=BigInteger)


class HypothesisLog(SQLModel, table=True):
    """A hypothesis's timeline: created, evidence changes, votes, links, resolution, regressions."""

    id: int | None = Field(default=None, primary_key=True)
    hypothesis_id: int = Field(foreign_key="hypothesis.id", index=True)
    at: datetime = _ts(default_factory=utcnow)
    kind: str = Field(max_length=32)
    text: str = Field(sa_type=Text)
    actor: str | None = Field(default=None, max_length=64)


class Decision(SQLModel, table=True):
    """What people decided; the analysis obeys these (merges, splits, rejections)."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # together | apart
    signature_ids: list = _json(list)
    actor: str | None = Field(default=None, max_length=64)
    at: datetime = _ts(default_factory=utcnow)
    active: bool = True


class Outbox(SQLModel, table=True):
    """A Slack call to make, written in the same transaction as its cause."""

    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_claim", "status", "priority", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    # post (chat.postMessage, records ts under message_key) | update | ephemeral | response | view
    op: str = Field(max_length=16)
    # Lower goes first: an answer to a person, then polls, digests and announcements, and
    # signature alerts last, so a poll never waits behind an alert backlog (outbox.PRIORITY).
    priority: int = Field(default=5)
    message_key: str | None = Field(default=None, max_length=128)  # post/update: which message
    thread_key: str | None = Field(default=None, max_length=128)  # reply in this message's thread
    dedupe_key: str | None = Field(default=None, max_length=160, unique=True)
    channel: str | None = Field(default=None, max_length=64)
    payload: dict = _json()
    status: str = Field(default="pending", max_length=16)  # pending | done | failed
    attempts: int = 0
    next_attempt_at: datetime = _ts(default_factory=utcnow)
    claimed_until: datetime | None = _ts(default=None)
    last_error: str | None = Field(default=None, max_length=512)
    created_at: datetime = _ts(default_factory=utcnow)
    delivered_at: datetime | None = _ts(default=None)


class NewSignatureQuota(SQLModel, table=True):
    """How many new-signature alerts one job (or, with job_id NULL, the whole service) was given
    in one window, and the new signatures beyond the cap, which one roll-up message reports."""

    key: str = Field(primary_key=True, max_length=96)  # window start + job hash, or window start + "*"
    window_start: datetime = _ts()
    job_id: str | None = Field(default=None, max_length=256)
    announced: int = 0
    rolled: int = 0  # new signatures held back and counted in the roll-up
    sample: list = _json(list)  # the first few held-back signature ids, for the roll-up's text


class SlackMessage(SQLModel, table=True):
    """Where a message we own lives in Slack, so later updates edit it in place."""

    key: str = Field(primary_key=True, max_length=128)
    channel: str = Field(max_length=64)
    ts: str = Field(max_length=32)
    posted_at: datetime = _ts(default_factory=utcnow)


class Poll(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    question: str = Field(max_length=1000)
    status: str = Field(default="open", max_length=16)  # open | closed
    anonymous: bool = True
    creator: str = Field(max_length=64)
    channel: str | None = Field(default=None, max_length=64)
    hypothesis_ids: list = _json(list)
    closes_at: datetime | None = _ts(default=None)
    closed_at: datetime | None = _ts(default=None)
    created_at: datetime = _ts(default_factory=utcnow)
    tally_version: int = 0  # bumped per ballot; the message shows rendered_version
    rendered_version: int = 0
    outcome: dict = _json()


class PollOption(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    poll_id: int = Field(foreign_key="poll.id", index=True)
    position: int
    label: str = Field(max_length=512)
    hypothesis_id: int | None = None
    # hypothesis | one_cause | separate | other
    kind: str = Field(default="hypothesis", max_length=16)


class Ballot(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("poll_id", "user_id", name="uq_ballot_poll_user"),)
    id: int | None = Field(default=None, primary_key=True)
    poll_id: int = Field(foreign_key="poll.id", index=True)
    user_id: str = Field(max_length=64)
    option_id: int = Field(foreign_key="polloption.id")
    at: datetime = _ts(default_factory=utcnow)


class RunbookLink(SQLModel, table=True):
    """A hand-made link (or unlink) between a hypothesis/signature and a runbook."""

    __table_args__ = (UniqueConstraint("target", "runbook_id", name="uq_runbooklink"),)
    id: int | None = Field(default=None, primary_key=True)
    target: str = Field(max_length=16)  # "H-3" or "S-12"
    runbook_id: str = Field(max_length=128)
    linked: bool = True  # False: a person unlinked an automatic match
    actor: str | None = Field(default=None, max_length=64)
    at: datetime = _ts(default_factory=utcnow)


class DigestRun(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("channel", "week", name="uq_digest_channel_week"),)
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=64)
    week: str = Field(max_length=10)  # 2025-W03
    claimed_at: datetime = _ts(default_factory=utcnow)
    claimed_by: str = Field(max_length=128)


class WorkClaim(SQLModel, table=True):
    """A named unit of background work claimed once (poll closing, analysis run markers)."""

    key: str = Field(primary_key=True, max_length=160)
    claimed_at: datetime = _ts(default_factory=utcnow)
    claimed_by: str = Field(max_length=128)


class JobExposure(SQLModel, table=True):
    """How far a job ran on one host with one code and framework version, from its progress
    reports (events of kind ``progress``): the exposure that makes a failure's absence mean
    something ("0 occurrences in 140,000 steps on v1.3"). One row per segment, widened in place."""

    __table_args__ = (
        UniqueConstraint("job_id", "host", "code_version", "versions_key", name="uq_jobexposure_segment"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=256)
    host: str = Field(default="", max_length=256)
    code_version: str = Field(default="", max_length=256)
    versions: dict = _json()
    versions_key: str = Field(max_length=32)  # a hash of the sorted version map
    first_step: int | None = Field(default=None, sa_type=BigInteger)
    last_step: int | None = Field(default=None, sa_type=BigInteger)
    first_seen: datetime = _ts()
    last_seen: datetime = _ts()


class KeyValue(SQLModel, table=True):
    """Small pieces of service state (e.g. the last event id the analysis has seen)."""

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_type=Text)
