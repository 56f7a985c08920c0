"""audit log: append-only entries chained by hashes, and their head row

Revision ID: b2d4f6a8c0e2
Revises: d4f6a8c0e2a4
Create Date: 2026-12-01 12:40:00

"""
import sqlalchemy as sa
from alembic import op

from server import integrity


# revision identifiers, used by Alembic.
revision = 'b2d4f6a8c0e2'
down_revision = 'd4f6a8c0e2a4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'audit_entry',
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('person_id', sa.String(length=36), nullable=True),
        sa.Column('device_id', sa.String(length=36), nullable=True),
        sa.Column('record_type', sa.String(length=32), nullable=True),
        sa.Column('record_id', sa.String(length=100), nullable=True),
        sa.Column('area_id', sa.String(length=36), nullable=True),
        sa.Column('address', sa.String(length=64), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('entry_hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_entry')),
    )
    op.create_index('ix_audit_entry_person_seq', 'audit_entry', ['person_id', 'seq'], unique=False)
    op.create_index('ix_audit_entry_record', 'audit_entry', ['record_type', 'record_id'], unique=False)
    op.create_index('ix_audit_entry_area_seq', 'audit_entry', ['area_id', 'seq'], unique=False)
    op.create_index('ix_audit_entry_at', 'audit_entry', ['at'], unique=False)
    head = op.create_table(
        'audit_head',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('entry_hash', sa.String(length=64), nullable=False),
        sa.CheckConstraint('id = 1', name=op.f('ck_audit_head_single_row')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head')),
    )
    op.bulk_insert(head, [{'id': 1, 'seq': 0, 'entry_hash': '0' * 64}])
    integrity.install_append_only(op.get_bind())


def downgrade():
    integrity.uninstall_append_only(op.get_bind())
    op.drop_table('audit_head')
    op.drop_index('ix_audit_entry_at', table_name='audit_entry')
    op.drop_index('ix_audit_entry_area_seq', table_name='audit_entry')
    op.drop_index('ix_audit_entry_record', table_name='audit_entry')
    op.drop_index('ix_audit_entry_person_seq', table_name='audit_entry')
    op.drop_table('audit_entry')
