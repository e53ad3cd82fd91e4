"""learnt scorers, and the scorer version of each annotation

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('scorers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('schema_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('params', sa.LargeBinary(), nullable=False),
    sa.Column('blend', sa.Float(), nullable=False),
    sa.Column('n_reviews', sa.Integer(), nullable=False),
    sa.Column('exemplar_watermark', sa.BigInteger(), nullable=False),
    sa.Column('fit_seconds', sa.Float(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['schema_id'], ['label_schemas.id'], name=op.f('fk_scorers_schema_id_label_schemas'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scorers')),
    sa.UniqueConstraint('schema_id', 'version', name=op.f('uq_scorers_schema_id_version'))
    )
    with op.batch_alter_table('scorers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scorers_schema_id'), ['schema_id'], unique=False)
    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scorer_version', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.drop_column('scorer_version')
    with op.batch_alter_table('scorers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scorers_schema_id'))
    op.drop_table('scorers')
