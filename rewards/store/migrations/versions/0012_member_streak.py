"""Login streak counters: each member's latest run of consecutive active days.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

The table is filled from `member_activity` here (one gaps-and-islands pass), after which
`record_activity` keeps it up to date.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('member_streak',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('member_id')
    )
    day_number = "julianday(day)" if op.get_bind().dialect.name == "sqlite" else (
        "(day - DATE '1970-01-01')"
    )
    # The latest island of consecutive days per member (day number minus row number is constant
    # along a run, and grows from one run to the next).
    op.execute(sa.text(
        "INSERT INTO member_streak (member_id, first_day, last_day) "
        "SELECT member_id, MIN(day), MAX(day) FROM ("
        " SELECT member_id, day, island, MAX(island) OVER (PARTITION BY member_id) AS latest"
        " FROM ("
        "  SELECT member_id, day,"
        f"  {day_number} - ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY day) AS island"
        "  FROM member_activity"
        " ) runs"
        ") marked WHERE island = latest GROUP BY member_id"
    ))


def downgrade() -> None:
    op.drop_table('member_streak')
