"""Self-service privacy and erasure: each member's own choices (leaderboard visibility,
celebrations, reply language), which win over the organisation's and the import's defaults, and
when a member was forgotten (`/forget me`).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 13:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rewards.store.types

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        'member',
        sa.Column('leaderboard_choice', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    )
    op.add_column(
        'member', sa.Column('celebrations', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True)
    )
    op.add_column(
        'member',
        sa.Column('reply_language', sqlmodel.sql.sqltypes.AutoString(length=35), nullable=True),
    )
    op.add_column(
        'member',
        sa.Column('forgotten_at', rewards.store.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index(
        'ix_member_leaderboard_shown',
        'member',
        ['id'],
        unique=False,
        postgresql_where=sa.text("leaderboard_choice = 'shown'"),
        sqlite_where=sa.text("leaderboard_choice = 'shown'"),
    )
    for name, column in (('ix_award_giver', 'giver_id'), ('ix_award_revoked_by', 'revoked_by_id')):
        op.create_index(
            name,
            'award',
            [column],
            unique=False,
            postgresql_where=sa.text(f'{column} IS NOT NULL'),
            sqlite_where=sa.text(f'{column} IS NOT NULL'),
        )


def downgrade() -> None:
    op.drop_index('ix_award_revoked_by', table_name='award')
    op.drop_index('ix_award_giver', table_name='award')
    op.drop_index('ix_member_leaderboard_shown', table_name='member')
    op.drop_column('member', 'forgotten_at')
    op.drop_column('member', 'reply_language')
    op.drop_column('member', 'celebrations')
    op.drop_column('member', 'leaderboard_choice')
