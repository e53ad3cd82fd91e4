"""scorer held-out heads: cross-fitted heads the calibrator scores reviewed items with

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db  # noqa: F401

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('scorers', sa.Column('held_out_params', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('scorers') as batch:
        batch.drop_column('held_out_params')
