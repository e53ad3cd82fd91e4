"""item vectors: embeddings of items kept for the learnt scorer's label propagation

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db  # noqa: F401

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('item_vectors',
    sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('embedder_id', sa.String(length=100), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_vectors_item_id_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_id', 'embedder_id', name=op.f('pk_item_vectors'))
    )


def downgrade() -> None:
    op.drop_table('item_vectors')
