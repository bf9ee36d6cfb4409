"""The giving allowance: what each giver has used of their kudos allowance this period.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 13:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'kudos_allowance',
        sa.Column('giver_id', sa.Integer(), nullable=False),
        sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('used', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['giver_id'], ['member.id']),
        sa.PrimaryKeyConstraint('giver_id'),
    )


def downgrade() -> None:
    op.drop_table('kudos_allowance')
