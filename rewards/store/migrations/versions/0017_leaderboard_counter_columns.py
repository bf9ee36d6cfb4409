"""Leaderboard counters: one row per (period, period start, dim, member) with a column per metric
(points, badges, kudos, kudos_given) instead of a row per metric, and a partial ranking index per
metric. An award adds its badge and its points to one row, so a sweep writes half the rows.

The existing counters are converted in SQL (summed per key, one column per metric), so no
rebuild is needed; the build state (zone) stays as it was.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 05:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

METRICS = ('points', 'badges', 'kudos', 'kudos_given')
KEY = ('period', 'period_start', 'dim', 'member_id')
OLD = 'leaderboard_counter_0016'


def _key_columns() -> list[sa.Column]:
    return [
        sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('dim', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
    ]


def _set_aside() -> None:
    """Rename the current table out of the way, with its primary key index on PostgreSQL (index
    names are per schema, and the new table's primary key takes the same name)."""
    op.rename_table('leaderboard_counter', OLD)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'ALTER INDEX leaderboard_counter_pkey RENAME TO {OLD}_pkey')


def upgrade() -> None:
    op.drop_index('ix_leaderboard_counter_rank', table_name='leaderboard_counter')
    _set_aside()
    op.create_table(
        'leaderboard_counter',
        *_key_columns(),
        *(sa.Column(metric, sa.BigInteger(), nullable=False) for metric in METRICS),
        sa.PrimaryKeyConstraint(*KEY),
    )
    for metric in METRICS:
        op.create_index(
            f'ix_leaderboard_counter_{metric}',
            'leaderboard_counter',
            ['period', 'period_start', 'dim', metric],
            unique=False,
            postgresql_where=sa.text(f'{metric} > 0'),
            sqlite_where=sa.text(f'{metric} > 0'),
        )
    sums = ', '.join(
        f"SUM(CASE WHEN metric = '{metric}' THEN value ELSE 0 END)" for metric in METRICS
    )
    keys = ', '.join(KEY)
    op.execute(
        f'INSERT INTO leaderboard_counter ({keys}, {", ".join(METRICS)}) '
        f'SELECT {keys}, {sums} FROM {OLD} GROUP BY {keys}'
    )
    op.drop_table(OLD)


def downgrade() -> None:
    for metric in METRICS:
        op.drop_index(f'ix_leaderboard_counter_{metric}', table_name='leaderboard_counter')
    _set_aside()
    op.create_table(
        'leaderboard_counter',
        sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        *_key_columns(),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('metric', *KEY),
    )
    op.create_index(
        'ix_leaderboard_counter_rank',
        'leaderboard_counter',
        ['metric', 'period', 'period_start', 'dim', 'value'],
        unique=False,
    )
    keys = ', '.join(KEY)
    for metric in METRICS:
        op.execute(
            f'INSERT INTO leaderboard_counter (metric, {keys}, value) '
            f"SELECT '{metric}', {keys}, {metric} FROM {OLD} WHERE {metric} <> 0"
        )
    op.drop_table(OLD)
