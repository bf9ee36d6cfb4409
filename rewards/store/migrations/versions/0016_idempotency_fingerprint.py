"""A fingerprint of the request an Idempotency-Key was first used for (method, route and canonical
body), so the same key with another body is refused instead of replaying the first answer.

Rows written before this revision have none; they keep being compared by route only.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 03:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        'api_idempotency',
        sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table('api_idempotency') as batch:
        batch.drop_column('fingerprint')
