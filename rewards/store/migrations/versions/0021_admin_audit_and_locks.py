"""Admin controls: the audit log of admin actions (`admin_audit`), a member's giving lock
(`member.giving_locked_at`, `member.giving_lock_reason`) and a kudos' revocation
(`kudos.revoked_at`, `revoked_by_id`, `revoke_reason`).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 13:35:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rewards.store.types

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'admin_audit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('actor_member_id', sa.Integer(), nullable=True),
        sa.Column('api_key_id', sa.Integer(), nullable=True),
        sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('target_kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=False),
        sa.Column('target_label', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(['actor_member_id'], ['member.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_key.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('admin_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_audit_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_admin_audit_target', ['target_kind', 'target_id'], unique=False)

    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'giving_locked_at', rewards.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                'giving_lock_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True
            )
        )

    with op.batch_alter_table('kudos', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('revoked_at', rewards.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column('revoked_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column('revoke_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.create_foreign_key('fk_kudos_revoked_by_id', 'member', ['revoked_by_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('kudos', schema=None) as batch_op:
        batch_op.drop_constraint('fk_kudos_revoked_by_id', type_='foreignkey')
        batch_op.drop_column('revoke_reason')
        batch_op.drop_column('revoked_by_id')
        batch_op.drop_column('revoked_at')

    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_column('giving_lock_reason')
        batch_op.drop_column('giving_locked_at')

    with op.batch_alter_table('admin_audit', schema=None) as batch_op:
        batch_op.drop_index('ix_admin_audit_target')
        batch_op.drop_index(batch_op.f('ix_admin_audit_created_at'))

    op.drop_table('admin_audit')
