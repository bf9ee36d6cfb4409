"""Initial schema: members, platform accounts, catalogue, awards, ledger and kudos.

Revision ID: 0001
Revises: 
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rewards.store.types
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kudos_tag',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('predefined', sa.Boolean(), nullable=False),
    sa.Column('created_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('job_code', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('department', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('manager_id', sa.Integer(), nullable=True),
    sa.Column('birthday_month', sa.Integer(), nullable=True),
    sa.Column('birthday_day', sa.Integer(), nullable=True),
    sa.Column('birth_year', sa.Integer(), nullable=True),
    sa.Column('hire_date', sa.Date(), nullable=True),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=35), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('leaderboard_opt_out', sa.Boolean(), nullable=False),
    sa.Column('celebrations_opt_out', sa.Boolean(), nullable=False),
    sa.Column('created_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['manager_id'], ['member.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email')
    )
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_department'), ['department'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_job_code'), ['job_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_manager_id'), ['manager_id'], unique=False)

    op.create_table('reward_category',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('reward_group',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('reward_type',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('kudos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('giver_id', sa.Integer(), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('visibility', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('channel', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['giver_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kudos', schema=None) as batch_op:
        batch_op.create_index('ix_kudos_giver_time', ['giver_id', 'created_at'], unique=False)
        batch_op.create_index('ix_kudos_time_giver', ['created_at', 'giver_id'], unique=False)

    op.create_table('member_group',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('member_id', 'name')
    )
    with op.batch_alter_table('member_group', schema=None) as batch_op:
        batch_op.create_index('ix_member_group_name', ['name'], unique=False)

    op.create_table('platform_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'tenant', 'user_id', name='uq_platform_account')
    )
    with op.batch_alter_table('platform_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_platform_account_member_id'), ['member_id'], unique=False)
        batch_op.create_index('ix_platform_account_username', ['platform', 'username'], unique=False)

    op.create_table('reward',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('reward_type_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('multiple', sa.Boolean(), nullable=False),
    sa.Column('timeframe', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('icon', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('definition', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['reward_category.id'], ),
    sa.ForeignKeyConstraint(['group_id'], ['reward_group.id'], ),
    sa.ForeignKeyConstraint(['reward_type_id'], ['reward_type.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reward', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reward_category_id'), ['category_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reward_reward_type_id'), ['reward_type_id'], unique=False)

    op.create_table('award',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reward_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('giver_id', sa.Integer(), nullable=True),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('award_key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('context', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('awarded_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', rewards.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.Column('revoke_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['giver_id'], ['member.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['member.id'], ),
    sa.ForeignKeyConstraint(['reward_id'], ['reward.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('award_key')
    )
    with op.batch_alter_table('award', schema=None) as batch_op:
        batch_op.create_index('ix_award_member_time_revoked', ['member_id', 'awarded_at', 'revoked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_award_reward_id'), ['reward_id'], unique=False)
        batch_op.create_index('ix_award_time_member', ['awarded_at', 'member_id', 'revoked_at'], unique=False)

    op.create_table('kudos_receiver',
    sa.Column('kudos_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('created_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['kudos_id'], ['kudos.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('kudos_id', 'member_id')
    )
    with op.batch_alter_table('kudos_receiver', schema=None) as batch_op:
        batch_op.create_index('ix_kudos_receiver_member_time', ['member_id', 'created_at'], unique=False)
        batch_op.create_index('ix_kudos_receiver_time_member', ['created_at', 'member_id'], unique=False)

    op.create_table('kudos_tag_link',
    sa.Column('kudos_id', sa.Integer(), nullable=False),
    sa.Column('tag', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('created_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['kudos_id'], ['kudos.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tag'], ['kudos_tag.name'], ),
    sa.PrimaryKeyConstraint('kudos_id', 'tag')
    )
    with op.batch_alter_table('kudos_tag_link', schema=None) as batch_op:
        batch_op.create_index('ix_kudos_tag_link_tag_time', ['tag', 'created_at'], unique=False)

    op.create_table('ledger_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('award_id', sa.Integer(), nullable=True),
    sa.Column('kudos_id', sa.Integer(), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['award_id'], ['award.id'], ),
    sa.ForeignKeyConstraint(['kudos_id'], ['kudos.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entry_award_id'), ['award_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_kudos_id'), ['kudos_id'], unique=False)
        batch_op.create_index('ix_ledger_member_time_points', ['member_id', 'created_at', 'points'], unique=False)
        batch_op.create_index('ix_ledger_time_member_points', ['created_at', 'member_id', 'points'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_time_member_points')
        batch_op.drop_index('ix_ledger_member_time_points')
        batch_op.drop_index(batch_op.f('ix_ledger_entry_kudos_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entry_award_id'))

    op.drop_table('ledger_entry')
    with op.batch_alter_table('kudos_tag_link', schema=None) as batch_op:
        batch_op.drop_index('ix_kudos_tag_link_tag_time')

    op.drop_table('kudos_tag_link')
    with op.batch_alter_table('kudos_receiver', schema=None) as batch_op:
        batch_op.drop_index('ix_kudos_receiver_time_member')
        batch_op.drop_index('ix_kudos_receiver_member_time')

    op.drop_table('kudos_receiver')
    with op.batch_alter_table('award', schema=None) as batch_op:
        batch_op.drop_index('ix_award_time_member')
        batch_op.drop_index(batch_op.f('ix_award_reward_id'))
        batch_op.drop_index('ix_award_member_time_revoked')

    op.drop_table('award')
    with op.batch_alter_table('reward', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reward_reward_type_id'))
        batch_op.drop_index(batch_op.f('ix_reward_category_id'))

    op.drop_table('reward')
    with op.batch_alter_table('platform_account', schema=None) as batch_op:
        batch_op.drop_index('ix_platform_account_username')
        batch_op.drop_index(batch_op.f('ix_platform_account_member_id'))

    op.drop_table('platform_account')
    with op.batch_alter_table('member_group', schema=None) as batch_op:
        batch_op.drop_index('ix_member_group_name')

    op.drop_table('member_group')
    with op.batch_alter_table('kudos', schema=None) as batch_op:
        batch_op.drop_index('ix_kudos_giver_time')
        batch_op.drop_index('ix_kudos_time_giver')

    op.drop_table('kudos')
    op.drop_table('reward_type')
    op.drop_table('reward_group')
    op.drop_table('reward_category')
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_manager_id'))
        batch_op.drop_index(batch_op.f('ix_member_job_code'))
        batch_op.drop_index(batch_op.f('ix_member_department'))

    op.drop_table('member')
    op.drop_table('kudos_tag')
