"""corrections supersede flagged visits

A volunteer's correction of a flagged visit is a new submission with `supersedes_id`; the
flagged visit is kept and gets `superseded_by_id`. The unique index holds "corrected at
most once" even for two pushes that race.

Revision ID: f2b3c4d5e6a7
Revises: b2d4f6a8c0e2
Create Date: 2026-12-01 15:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f2b3c4d5e6a7'
down_revision = 'b2d4f6a8c0e2'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN and CREATE INDEX, not a batch: on SQLite a batch would rebuild the
    # submission table and drop its integrity triggers (server/integrity.py).
    op.add_column('submission', sa.Column('supersedes_id', sa.String(length=36), nullable=True))
    op.add_column('submission', sa.Column('superseded_by_id', sa.String(length=36), nullable=True))
    op.create_index('uq_submission_supersedes', 'submission', ['supersedes_id'], unique=True)


def downgrade():
    op.drop_index('uq_submission_supersedes', table_name='submission')
    # Plain DROP COLUMN (SQLite 3.35+), for the same reason as above.
    op.drop_column('submission', 'superseded_by_id')
    op.drop_column('submission', 'supersedes_id')
