"""versions carry translations: a form or agreement version keeps its source language and its texts in other languages

A translation is not a new version: the definition (keys, lines, grades) stays as published,
and `translations` holds {language: {text key: text}} beside it (see sync/content.py).
Existing versions were written in English.

Revision ID: d1e2f3a4b5c6
Revises: b9c0d1e2f3a4
Create Date: 2026-12-01 23:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd1e2f3a4b5c6'
down_revision = 'b9c0d1e2f3a4'
branch_labels = None
depends_on = None

TABLES = ('form_version', 'agreement_version')


def upgrade():
    # Plain ADD COLUMN with a default, not a batch: SQLite adds it without rebuilding the table.
    for table in TABLES:
        op.add_column(table, sa.Column('language', sa.String(length=16), nullable=False, server_default='en'))
        op.add_column(table, sa.Column('translations', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column('translations')
            batch_op.drop_column('language')
