"""occurrence aggregates (eventaggregate), run lineage and aggregate ids on events

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 23:55:00

The backfill groups the stored events in SQL (GROUP BY the aggregate key and a 30-second
bucket), gives each group the id ingest would compute (a frozen copy of
``services.ingest.aggregate_key``: migrations must not import code that may change later), and
points every event at its aggregate in one set-based UPDATE through a temporary index on the key.
Runs the same on SQLite and PostgreSQL.
"""

import hashlib
import json

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the submodule the rendered column types name
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BUCKET_SECONDS = 30
MIXED_GPU = "*"


def _aggregate_key(signature_id, bucket_start, job_id, host, cluster, code_version, versions, run, attempt) -> int:
    key = repr((signature_id, bucket_start, job_id, host, cluster, code_version, versions, run, attempt)).encode()
    return (int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") >> 1) or 1


def upgrade() -> None:
    op.create_table(
        "eventaggregate",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False),
        sa.Column("signature_id", sa.Integer(), nullable=False),
        sa.Column("bucket_start", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("cluster", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("code_version", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("run", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("attempt", sa.BigInteger(), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_rank", sa.BigInteger(), nullable=True),
        sa.Column("gpu", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("min_step", sa.BigInteger(), nullable=True),
        sa.Column("max_step", sa.BigInteger(), nullable=True),
        sa.Column("hypothesis_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["signature_id"],
            ["signature.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("eventaggregate", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eventaggregate_hypothesis_id"), ["hypothesis_id"], unique=False)
        batch_op.create_index("ix_eventaggregate_signature_last", ["signature_id", "last_time"], unique=False)
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True))
        batch_op.add_column(sa.Column("attempt", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("aggregate_id", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_event_aggregate_id"), ["aggregate_id"], unique=False)
    _backfill(op.get_bind())


def _backfill(conn) -> None:
    sqlite = conn.dialect.name == "sqlite"
    w = BUCKET_SECONDS
    if sqlite:
        bucket = f"(CAST(strftime('%s', {{t}}) AS INTEGER) / {w} * {w})"
        text_of = "{}"
        same = "IS"
    else:
        bucket = f"(CAST(floor(extract(epoch FROM {{t}}) / {w}) AS BIGINT) * {w})"
        text_of = "CAST({} AS TEXT)"
        same = "IS NOT DISTINCT FROM"
    vtext = text_of.format("e.versions")
    groups = conn.execute(
        sa.text(
            f"SELECT e.signature_id, {bucket.format(t='e.time')} AS b, e.job_id, e.host, e.cluster, e.code_version, "
            f"{vtext} AS v, count(*), min(e.time), max(e.time), "
            # The one GPU when every event names the same one, else the marker (NULL when none names one).
            "CASE WHEN count(DISTINCT e.gpu) = 1 AND count(e.gpu) = count(*) THEN min(e.gpu) "
            f"WHEN count(e.gpu) = 0 THEN NULL ELSE '{MIXED_GPU}' END, "
            "min(e.step), max(e.step), count(DISTINCT e.hypothesis_id), min(e.hypothesis_id), count(e.hypothesis_id) "
            f"FROM event e GROUP BY e.signature_id, b, e.job_id, e.host, e.cluster, e.code_version, {vtext}"
        )
    ).all()
    if not groups:
        return
    agg = sa.table(
        "eventaggregate",
        *(
            sa.column(c)
            for c in (
                "id",
                "signature_id",
                "bucket_start",
                "job_id",
                "host",
                "cluster",
                "code_version",
                "versions",
                "run",
                "attempt",
                "count",
                "first_time",
                "last_time",
                "first_rank",
                "gpu",
                "min_step",
                "max_step",
                "hypothesis_id",
            )
        ),
    )
    rows, ids = [], set()
    for sid, b, job, host, cluster, code, vjson, n, first, last, gpu, lo, hi, nh, hid, nhid in groups:
        versions = json.loads(vjson) if vjson else {}
        b = int(b)
        aid = _aggregate_key(sid, b, job, host, cluster, code, tuple(sorted(versions.items())), None, None)
        if aid in ids:  # the same versions stored in another key order: a row of its own
            aid = _aggregate_key(sid, b, job, host, cluster, code, vjson, None, None)
        ids.add(aid)
        rows.append(
            {
                "id": aid,
                "signature_id": sid,
                "bucket_start": b,
                "job_id": job,
                "host": host,
                "cluster": cluster,
                "code_version": code,
                "versions": vjson or "{}",
                "run": None,
                "attempt": None,
                "count": n,
                "first_time": first,
                "last_time": last,
                "first_rank": None,
                "gpu": gpu,
                "min_step": lo,
                "max_step": hi,
                # one hypothesis per aggregate: where its events disagreed it takes none (and so
                # do they, below); the next analysis assigns them again
                "hypothesis_id": hid if nh == 1 and nhid == n else None,
            }
        )
    for i in range(0, len(rows), 1000):
        conn.execute(sa.insert(agg), rows[i : i + 1000])
    # Each event finds its row through a temporary index on the key (one statement, set-based).
    conn.execute(
        sa.text("CREATE INDEX ix_tmp_eventaggregate_key ON eventaggregate (signature_id, bucket_start, job_id)")
    )
    conn.execute(
        sa.text(
            "UPDATE event SET aggregate_id = (SELECT a.id FROM eventaggregate a WHERE a.signature_id = event.signature_id "
            f"AND a.bucket_start = {bucket.format(t='event.time')} AND a.job_id = event.job_id "
            f"AND a.host {same} event.host AND a.cluster {same} event.cluster AND a.code_version {same} event.code_version "
            f"AND {text_of.format('a.versions')} = {text_of.format('event.versions')})"
        )
    )
    conn.execute(sa.text("DROP INDEX ix_tmp_eventaggregate_key"))
    conn.execute(
        sa.text(
            "UPDATE eventaggregate SET first_rank = (SELECT e.rank FROM event e WHERE e.aggregate_id = eventaggregate.id "
            "ORDER BY e.time, e.id LIMIT 1)"
        )
    )
    conn.execute(
        sa.text(
            "UPDATE event SET hypothesis_id = NULL WHERE hypothesis_id IS NOT NULL AND aggregate_id IN "
            "(SELECT id FROM eventaggregate WHERE hypothesis_id IS NULL)"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_aggregate_id"))
        batch_op.drop_column("aggregate_id")
        batch_op.drop_column("attempt")
        batch_op.drop_column("run")
    with op.batch_alter_table("eventaggregate", schema=None) as batch_op:
        batch_op.drop_index("ix_eventaggregate_signature_last")
        batch_op.drop_index(batch_op.f("ix_eventaggregate_hypothesis_id"))
    op.drop_table("eventaggregate")
