"""drop indexes no page reads

Every index is written by every push (the answer index once per graded line). These four
were never scanned by the coordinator's pages, the public page or the pulls (checked with
pg_stat_user_indexes on the 100,000-visit benchmark database), so they only slowed ingest.

Revision ID: 9e9d20bb4ecf
Revises: ebe674435446
Create Date: 2026-11-22 15:10:36.871501

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '9e9d20bb4ecf'
down_revision = 'ebe674435446'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_answer_area_line_observed'))

    with op.batch_alter_table('mutation_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mutation_log_device_id'))

    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_form'))
        batch_op.drop_index(batch_op.f('ix_submission_person_received'))



def downgrade():
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_person_received'), ['person_id', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_submission_form'), ['form_id', 'form_version'], unique=False)

    with op.batch_alter_table('mutation_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mutation_log_device_id'), ['device_id'], unique=False)

    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_answer_area_line_observed'), ['area_id', 'line_key', 'observed_at'], unique=False)

