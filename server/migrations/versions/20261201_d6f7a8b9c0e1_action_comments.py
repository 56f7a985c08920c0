"""action comments: notes between coordinators and the partner an action is assigned to

Revision ID: d6f7a8b9c0e1
Revises: f2b3c4d5e6a7
Create Date: 2026-12-01 15:45:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd6f7a8b9c0e1'
down_revision = "f2b3c4d5e6a7"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'action_comment',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('action_id', sa.String(length=36), nullable=False),
        sa.Column('author_id', sa.String(length=36), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['action_id'], ['action.id'], name=op.f('fk_action_comment_action_id_action')),
        sa.ForeignKeyConstraint(['author_id'], ['person.id'], name=op.f('fk_action_comment_author_id_person'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_action_comment')),
    )
    op.create_index(op.f('ix_action_comment_action_id'), 'action_comment', ['action_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_action_comment_action_id'), table_name='action_comment')
    op.drop_table('action_comment')
