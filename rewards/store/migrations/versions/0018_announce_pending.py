"""Awards to announce as one row per batch (`announce_pending`) instead of a mark per award
(`award.announce_run`): clearing the marks of a 33,000-award sweep was an UPDATE of 33,000 award
rows, each a new row version in every award index (the partial index names the column, so it
could not be a HOT update); deleting a few dozen pending rows costs next to nothing.

Awards still marked are carried over: one pending row per (reward, run) with their ids, so the
next run announces them as it would have. The downgrade writes the marks back.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 06:10:00.000000
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone

import sqlalchemy as sa
import sqlmodel
from alembic import op

import rewards.store.types

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

PENDING = sa.table(
    'announce_pending',
    sa.column('reward_id', sa.Integer()),
    sa.column('run_key', sa.String()),
    sa.column('award_ids', rewards.store.types.JSONType),
    sa.column('created_at', rewards.store.types.UTCDateTime(timezone=True)),
)
AWARD = sa.table(
    'award',
    sa.column('id', sa.Integer()),
    sa.column('reward_id', sa.Integer()),
    sa.column('announce_run', sa.String()),
)


def upgrade() -> None:
    op.create_table(
        'announce_pending',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('reward_id', sa.Integer(), nullable=False),
        sa.Column('run_key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('award_ids', rewards.store.types.JSONType, nullable=False),
        sa.Column('created_at', rewards.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['reward_id'], ['reward.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        op.f('ix_announce_pending_reward_id'), 'announce_pending', ['reward_id'], unique=False
    )
    bind = op.get_bind()
    runs: dict[tuple[int, str], list[int]] = defaultdict(list)
    marked = bind.execute(
        sa.select(AWARD.c.id, AWARD.c.reward_id, AWARD.c.announce_run)
        .where(AWARD.c.announce_run.is_not(None))
        .order_by(AWARD.c.id)
    )
    for award_id, reward_id, run_key in marked:
        runs[(int(reward_id), str(run_key))].append(int(award_id))
    if runs:
        now = datetime.now(timezone.utc)
        bind.execute(
            PENDING.insert(),
            [
                {'reward_id': reward_id, 'run_key': run_key, 'award_ids': ids, 'created_at': now}
                for (reward_id, run_key), ids in runs.items()
            ],
        )
    op.drop_index('ix_award_unannounced', table_name='award')
    with op.batch_alter_table('award') as batch:
        batch.drop_column('announce_run')


def downgrade() -> None:
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
    bind = op.get_bind()
    pending = bind.execute(sa.select(PENDING.c.run_key, PENDING.c.award_ids)).all()
    for run_key, ids in pending:
        if ids:
            bind.execute(
                AWARD.update().where(AWARD.c.id.in_(list(ids))).values(announce_run=run_key)
            )
    op.drop_index(op.f('ix_announce_pending_reward_id'), table_name='announce_pending')
    op.drop_table('announce_pending')
