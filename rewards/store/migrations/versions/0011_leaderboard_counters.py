"""Leaderboard read models: per-member counters by calendar period, and their build state.

The counters are not backfilled here: bucketing needs the organisation's `TIMEZONE`, which a
migration does not know. With no `leaderboard_counter_state` row, `rewards serve` rebuilds them
at start (as `rewards leaderboard rebuild` does) before answering.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rewards.store.types


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('leaderboard_counter',
    sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('dim', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('metric', 'period', 'period_start', 'dim', 'member_id')
    )
    with op.batch_alter_table('leaderboard_counter', schema=None) as batch_op:
        batch_op.create_index('ix_leaderboard_counter_rank', ['metric', 'period', 'period_start', 'dim', 'value'], unique=False)

    op.create_table('leaderboard_counter_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rebuilt_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('leaderboard_counter_state')
    with op.batch_alter_table('leaderboard_counter', schema=None) as batch_op:
        batch_op.drop_index('ix_leaderboard_counter_rank')

    op.drop_table('leaderboard_counter')
