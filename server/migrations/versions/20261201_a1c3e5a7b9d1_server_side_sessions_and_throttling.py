"""server-side sessions, shared sign-in throttling, one-time passwords

Web sessions move from the signed cookie alone to a row per session (the cookie carries a
secret, the row its SHA-256), so signing out, a password change and an admin's "sign out
everywhere" end a session wherever its cookie was copied. Throttle counters live in the
database so every worker and host counts the same sign-in and enrolment attempts.

Revision ID: a1c3e5a7b9d1
Revises: c3e5a7b9d1f3
Create Date: 2026-12-01 12:30:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a1c3e5a7b9d1'
down_revision = 'c3e5a7b9d1f3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'web_session',
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('person_id', sa.String(length=36), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_web_session_person_id_person'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('secret_hash', name=op.f('pk_web_session')),
    )
    op.create_index(op.f('ix_web_session_person_id'), 'web_session', ['person_id'], unique=False)
    op.create_table(
        'throttle_counter',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_throttle_counter')),
    )
    op.create_index(op.f('ix_throttle_counter_expires_at'), 'throttle_counter', ['expires_at'], unique=False)
    # A plain ADD COLUMN, not a batch: on SQLite a batch would rebuild the table.
    op.add_column('person', sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('person') as batch_op:
        batch_op.drop_column('must_change_password')
    op.drop_index(op.f('ix_throttle_counter_expires_at'), table_name='throttle_counter')
    op.drop_table('throttle_counter')
    op.drop_index(op.f('ix_web_session_person_id'), table_name='web_session')
    op.drop_table('web_session')
