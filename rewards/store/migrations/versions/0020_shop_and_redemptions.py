"""The rewards shop: its items (`shop_item`), redemptions (`redemption`) and what each member
has spent (`member_wallet`, also the row a redemption locks so concurrent ones cannot overdraw).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 13:03:09.234073
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rewards.store.types

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'shop_item',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column('cost', sa.BigInteger(), nullable=False),
        sa.Column('stock', sa.Integer(), nullable=True),
        sa.Column('stock_left', sa.Integer(), nullable=True),
        sa.Column('per_member_limit', sa.Integer(), nullable=True),
        sa.Column('limit_period', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column('approval', sa.Boolean(), nullable=False),
        sa.Column('icon', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column('available_to', rewards.store.types.JSONType, nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('updated_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'member_wallet',
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('spent', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['member.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('member_id'),
    )
    op.create_table(
        'redemption',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('cost', sa.BigInteger(), nullable=False),
        sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column('approval', sa.Boolean(), nullable=False),
        sa.Column('requested_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column('decided_at', rewards.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column('fulfilled_by', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column('fulfilled_at', rewards.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['item_id'], ['shop_item.id']),
        sa.ForeignKeyConstraint(['member_id'], ['member.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        'ix_redemption_member_item',
        'redemption',
        ['member_id', 'item_id', 'requested_at'],
        unique=False,
    )
    op.create_index('ix_redemption_state', 'redemption', ['state', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_redemption_state', table_name='redemption')
    op.drop_index('ix_redemption_member_item', table_name='redemption')
    op.drop_table('redemption')
    op.drop_table('member_wallet')
    op.drop_table('shop_item')
