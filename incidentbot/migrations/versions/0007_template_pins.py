"""template engine undo: a family remembers the templates that collapsed into others (pins)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("templatefamily") as batch:
        batch.add_column(sa.Column("pins", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table("templatefamily") as batch:
        batch.drop_column("pins")
