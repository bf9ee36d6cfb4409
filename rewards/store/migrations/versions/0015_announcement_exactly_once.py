"""Announcements exactly once: `award.announce_run` marks a rule award whose announcement is not
recorded yet (written with the award, cleared with the announcement), and `delivery.lease_token`
names the holder of a delivery's lease (re-checked right before sending).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 03:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('award') as batch:
        batch.add_column(
            sa.Column('announce_run', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True)
        )
    op.create_index(
        'ix_award_unannounced',
        'award',
        ['reward_id'],
        unique=False,
        postgresql_where=sa.text('announce_run IS NOT NULL'),
        sqlite_where=sa.text('announce_run IS NOT NULL'),
    )
    with op.batch_alter_table('delivery') as batch:
        batch.add_column(
            sa.Column('lease_token', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('delivery') as batch:
        batch.drop_column('lease_token')
    op.drop_index('ix_award_unannounced', table_name='award')
    with op.batch_alter_table('award') as batch:
        batch.drop_column('announce_run')
