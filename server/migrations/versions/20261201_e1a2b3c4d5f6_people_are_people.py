"""people are people: named or not, deactivated, personal re-join codes

A volunteer who joined with no name keeps a placeholder name for coordinators and is greeted
without one (`person.name_given`); a deactivated volunteer cannot join or sign in
(`person.deactivated_at`); a shared phone is taken over with a personal re-join code, kept as
a public handle (unique) and the SHA-256 of its secret part.

Revision ID: e1a2b3c4d5f6
Revises: d6f7a8b9c0e1
Create Date: 2026-12-01 15:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e1a2b3c4d5f6'
down_revision = "d6f7a8b9c0e1"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN and index statements, not a batch: on SQLite a batch would rebuild the table.
    op.add_column('person', sa.Column('name_given', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column('person', sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('person', sa.Column('rejoin_handle', sa.String(length=8), nullable=True))
    op.add_column('person', sa.Column('rejoin_hash', sa.String(length=64), nullable=True))
    op.create_index('ix_person_rejoin_handle', 'person', ['rejoin_handle'], unique=True)


def downgrade():
    op.drop_index('ix_person_rejoin_handle', table_name='person')
    # Plain DROP COLUMN (SQLite 3.35+): a batch would rebuild `person`, and dropping the old
    # table fails on SQLite while visits, devices and roles refer to it.
    op.drop_column('person', 'rejoin_hash')
    op.drop_column('person', 'rejoin_handle')
    op.drop_column('person', 'deactivated_at')
    op.drop_column('person', 'name_given')
