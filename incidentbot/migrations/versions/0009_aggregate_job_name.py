"""eventaggregate.job_name: the launcher's job name, which a run's resubmissions share

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:40:00

A SLURM resubmission gets a new numeric job id and keeps its ``--job-name``; the analysis reads the
name from the aggregates to see those jobs as the attempts of one run. Aggregates stored before
this revision have no name (NULL): their jobs are grouped by id patterns only, as before.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: a plain ALTER TABLE on both databases, no rebuild.
    with op.batch_alter_table("eventaggregate") as batch:
        batch.add_column(sa.Column("job_name", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("eventaggregate") as batch:
        batch.drop_column("job_name")
