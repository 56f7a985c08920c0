"""first syncs bounded by what is live: an index on a change's record, in seq order

A new or reset device receives the latest change of each live record in its scope, and
`kerbside compact` removes the changes a later one replaced: both ask, for one change,
whether its record has a later one.

Revision ID: c7d8e9f0a1b2
Revises: a3c4d5e6f7b8
Create Date: 2026-12-01 19:30:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c7d8e9f0a1b2'
down_revision = "a3c4d5e6f7b8"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_change_record_seq", "change", ["collection", "record_id", "seq"])


def downgrade():
    op.drop_index("ix_change_record_seq", table_name="change")
