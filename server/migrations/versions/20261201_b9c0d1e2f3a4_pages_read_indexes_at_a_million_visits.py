"""pages read indexes at a million visits: answers' area index covers the pages' counts; left-out visits and the review queue indexed

At 1,000,000 visits (12,000,000 answer rows) the trends page counted a year of one area's
street grades by fetching 300,000 answer rows from pages spread over the whole table, and
every figure looked for the area's flagged and superseded visits by reading all of its
visits. On PostgreSQL the answers' (area, kind, observed_at) index now carries the columns
those counts read (INCLUDE, for an index-only scan); a partial index holds only the visits
no figure counts; and the review queue (an area's waiting visits, newest arrivals first, 50,000
of them) is read in its order from (area, review status, received_at) instead of being sorted.
The answers' integrity check probes each submission of a statement once, not once per answer.

Revision ID: b9c0d1e2f3a4
Revises: c7d8e9f0a1b2
Create Date: 2026-12-01 19:30:00

"""
from alembic import op
import sqlalchemy as sa

from server import integrity


# revision identifiers, used by Alembic.
revision = 'b9c0d1e2f3a4'
down_revision = 'c7d8e9f0a1b2'
branch_labels = None
depends_on = None

LEFT_OUT = "review_status = 'flagged' OR superseded_by_id IS NOT NULL"


def upgrade():
    # Plain index statements, not a batch: on SQLite a batch could rebuild the tables and lose
    # their integrity triggers. SQLite has no INCLUDE: there the index stays as it was.
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index('ix_answer_area_kind_observed', table_name='answer')
        op.create_index('ix_answer_area_kind_observed', 'answer', ['area_id', 'kind', 'observed_at'], unique=False,
                        postgresql_include=['line_key', 'theme', 'grade', 'submission_id'])
    op.create_index('ix_submission_left_out', 'submission', ['area_id'], unique=False,
                    postgresql_where=sa.text(LEFT_OUT), sqlite_where=sa.text(LEFT_OUT))
    op.create_index('ix_submission_area_status_received', 'submission', ['area_id', 'review_status', 'received_at'],
                    unique=False, postgresql_include=['superseded_by_id', 'person_id'])
    # The answers' per-statement check now probes each submission once (server/integrity.py);
    # CREATE OR REPLACE, so it is the same call as the first install. A downgrade keeps it: it
    # refuses exactly what the earlier body refused.
    integrity.install(op.get_bind())


def downgrade():
    op.drop_index('ix_submission_area_status_received', table_name='submission')
    op.drop_index('ix_submission_left_out', table_name='submission')
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index('ix_answer_area_kind_observed', table_name='answer')
        op.create_index('ix_answer_area_kind_observed', 'answer', ['area_id', 'kind', 'observed_at'], unique=False)
