"""answers checked per statement, not by foreign key

The foreign key from answer to submission checked each of a push's 1,200 answer rows on its
own; server.integrity enforces the same rule once per statement (see its docstring).

Revision ID: e5f6c72a9497
Revises: 9e9d20bb4ecf
Create Date: 2026-11-22 15:22:11.317762

"""
from alembic import op

from server import integrity


# revision identifiers, used by Alembic.
revision = 'e5f6c72a9497'
down_revision = '9e9d20bb4ecf'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_answer_submission_id_submission'), type_='foreignkey')
    integrity.install(op.get_bind())


def downgrade():
    integrity.uninstall(op.get_bind())
    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_answer_submission_id_submission'), 'submission', ['submission_id'], ['id'])
