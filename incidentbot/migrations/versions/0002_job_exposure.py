"""job exposure from progress reports

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 04:30:00
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the submodule the rendered column types name
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobexposure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("code_version", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("versions_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "host", "code_version", "versions_key", name="uq_jobexposure_segment"),
    )


def downgrade() -> None:
    op.drop_table("jobexposure")
