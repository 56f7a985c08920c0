"""photo location and quota

Photos are stored without their location unless the area keeps it (`area.keep_photo_location`),
under the stripped bytes' own hash (`blob.stored_sha256`); a device's uploads are counted per
period for its rate limit and quota (index on device and time).

Revision ID: c3e5a7b9d1f3
Revises: 31cd798b9a4f
Create Date: 2026-12-01 12:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3e5a7b9d1f3'
down_revision = '31cd798b9a4f'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN and index statements, not a batch: on SQLite a batch would rebuild tables.
    op.add_column('area', sa.Column('keep_photo_location', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('blob', sa.Column('stored_sha256', sa.String(length=64), nullable=True))
    op.create_index('ix_blob_stored_sha256', 'blob', ['stored_sha256'], unique=False)
    op.create_index('ix_blob_device_created', 'blob', ['device_id', 'created_at'], unique=False)


def downgrade():
    op.drop_index('ix_blob_device_created', table_name='blob')
    op.drop_index('ix_blob_stored_sha256', table_name='blob')
    with op.batch_alter_table('blob') as batch:
        batch.drop_column('stored_sha256')
    with op.batch_alter_table('area') as batch:
        batch.drop_column('keep_photo_location')
