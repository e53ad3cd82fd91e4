"""dataset upload status, and review-page sessions kept on the server

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), server_default='complete',
                                      nullable=False))
        batch_op.add_column(sa.Column('uploader', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('updated_at', app.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=True))
    op.create_table('page_sessions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], name=op.f('fk_page_sessions_key_id_api_keys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_page_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_page_sessions_token_hash'))
    )
    with op.batch_alter_table('page_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_page_sessions_key_id'), ['key_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('page_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_page_sessions_key_id'))
    op.drop_table('page_sessions')
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_column('error')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('uploader')
        batch_op.drop_column('status')
