"""schema priors: the calibrator fitted on a schema version's own examples, stored per judge

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('schema_priors',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('schema_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('judge_key', sa.String(length=600), nullable=False),
    sa.Column('top_k', sa.Integer(), nullable=False),
    sa.Column('params', app.db.JSONType, nullable=False),
    sa.Column('fit_seconds', sa.Float(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['schema_id'], ['label_schemas.id'], name=op.f('fk_schema_priors_schema_id_label_schemas'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schema_priors')),
    sa.UniqueConstraint('schema_id', 'content_hash', 'judge_key', 'top_k', name=op.f('uq_schema_priors_schema_id_content_hash_judge_key_top_k'))
    )
    with op.batch_alter_table('schema_priors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schema_priors_schema_id'), ['schema_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('schema_priors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schema_priors_schema_id'))
    op.drop_table('schema_priors')
