"""answers indexed by area kind and time

The area's pages select answers by area, kind and period; none filters on theme. An index on
(area, kind, observed_at) serves those ranges directly and is narrower to write on every push.

Revision ID: 31cd798b9a4f
Revises: e5f6c72a9497
Create Date: 2026-11-22 15:27:21.196920

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '31cd798b9a4f'
down_revision = 'e5f6c72a9497'
branch_labels = None
depends_on = None


def upgrade():
    # Plain index statements, not a batch: on SQLite a batch could rebuild the table and lose
    # its integrity triggers.
    op.drop_index('ix_answer_area_theme_observed', table_name='answer')
    op.create_index('ix_answer_area_kind_observed', 'answer', ['area_id', 'kind', 'observed_at'], unique=False)


def downgrade():
    op.drop_index('ix_answer_area_kind_observed', table_name='answer')
    op.create_index('ix_answer_area_theme_observed', 'answer', ['area_id', 'theme', 'observed_at'], unique=False)
