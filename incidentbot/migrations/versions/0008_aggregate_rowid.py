"""eventaggregate on SQLite: the hashed id is a key beside the rowid, no longer the rowid itself

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 06:40:00

SQLite keeps a table in the order of its INTEGER PRIMARY KEY (the rowid). An aggregate's id is a
hash of its key, so every new aggregate was written to a random page of the whole table, and a
batch of 1,000 new ones dirtied up to 1,000 pages. Declared BIGINT, the id is a unique key beside
an implicit rowid: rows are appended and only the compact key index takes random inserts (SQLite
alone: about 3x the insert rate at 100,000 aggregates). The ids, and so every event's
``aggregate_id``, stay as they are. PostgreSQL keeps rows in a heap anyway: nothing changes there.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _retype(old: sa.types.TypeEngine, new: sa.types.TypeEngine) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # A batch rebuild copies the rows in id order into the new table, indexes included.
    with op.batch_alter_table("eventaggregate", recreate="always") as batch:
        batch.alter_column("id", existing_type=old, type_=new, existing_nullable=False, autoincrement=False)


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer())
