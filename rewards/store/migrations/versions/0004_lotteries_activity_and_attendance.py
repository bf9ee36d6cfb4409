"""Recorded lottery draws, daily member activity and attendance data sets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rewards.store.types
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('attendance_record',
    sa.Column('dataset', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('present', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dataset', 'member_id', 'day')
    )
    with op.batch_alter_table('attendance_record', schema=None) as batch_op:
        batch_op.create_index('ix_attendance_dataset_day', ['dataset', 'day'], unique=False)

    op.create_table('member_activity',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('first_seen_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('member_id', 'day')
    )
    op.create_table('lottery_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reward_id', sa.Integer(), nullable=False),
    sa.Column('draw_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('seed', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('eligible_count', sa.Integer(), nullable=False),
    sa.Column('eligible_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('winners', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('parameters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('drawn_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['reward_id'], ['reward.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('draw_key')
    )
    with op.batch_alter_table('lottery_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lottery_run_reward_id'), ['reward_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('lottery_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lottery_run_reward_id'))

    op.drop_table('lottery_run')
    op.drop_table('member_activity')
    with op.batch_alter_table('attendance_record', schema=None) as batch_op:
        batch_op.drop_index('ix_attendance_dataset_day')

    op.drop_table('attendance_record')
