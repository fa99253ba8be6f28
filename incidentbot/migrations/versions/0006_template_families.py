"""template engine state: families of learned templates and their bucket lock rows

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 12:00:00
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the submodule the rendered column types name
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "templatebucket",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("families", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "templatefamily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("bucket", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("partition", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("base", sa.JSON(), nullable=False),
        sa.Column("splits", sa.JSON(), nullable=False),
        sa.Column("templates", sa.JSON(), nullable=False),
        sa.Column("variable", sa.JSON(), nullable=False),
        sa.Column("texts", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_templatefamily_bucket", "templatefamily", ["bucket"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_templatefamily_bucket", table_name="templatefamily")
    op.drop_table("templatefamily")
    op.drop_table("templatebucket")
