"""The catalogue's version number, bumped by every load that changes a reward (the per-process
cache of definitions checks it once per turn).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 00:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # The row is created by the first catalogue load (`bump_version`); until then nothing is
    # cached.


def downgrade() -> None:
    op.drop_table('catalog_version')
