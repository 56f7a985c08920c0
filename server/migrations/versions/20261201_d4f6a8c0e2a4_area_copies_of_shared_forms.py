"""area copies of shared forms

A shared form (no area) belongs to admins; a coordinator makes their area's own copy of it.
`form.copy_of` names the shared form a copy stands in for in its area.

Revision ID: d4f6a8c0e2a4
Revises: a1c3e5a7b9d1
Create Date: 2026-12-01 12:40:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd4f6a8c0e2a4'
down_revision = 'a1c3e5a7b9d1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('form') as batch_op:
        batch_op.add_column(sa.Column('copy_of', sa.String(length=64), nullable=True))
        batch_op.create_foreign_key('fk_form_copy_of_form', 'form', ['copy_of'], ['id'])


def downgrade():
    with op.batch_alter_table('form') as batch_op:
        batch_op.drop_constraint('fk_form_copy_of_form', type_='foreignkey')
        batch_op.drop_column('copy_of')
