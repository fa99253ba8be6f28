"""flood bounds: outbox priority, new-signature alert quotas, the sent time of clamped events

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01 23:50:00
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the submodule the rendered column types name
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="5"))
        batch.create_index("ix_outbox_claim", ["status", "priority", "id"], unique=False)
    with op.batch_alter_table("event") as batch:
        batch.add_column(sa.Column("sent_time", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "newsignaturequota",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
        sa.Column("announced", sa.Integer(), nullable=False),
        sa.Column("rolled", sa.Integer(), nullable=False),
        sa.Column("sample", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("newsignaturequota")
    with op.batch_alter_table("event") as batch:
        batch.drop_column("sent_time")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_claim")
        batch.drop_column("priority")
