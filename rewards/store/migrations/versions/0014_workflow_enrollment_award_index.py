"""An index on `workflow_enrollment.award_id`: the event hooks award Automated Badges through the
batch path (a multi-row insert into `award` with ON CONFLICT), and SQLite's plan for that probes
the foreign keys pointing at `award`; without an index this one was a scan of every enrolment.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 02:45:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f('ix_workflow_enrollment_award_id'), 'workflow_enrollment', ['award_id'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_workflow_enrollment_award_id'), table_name='workflow_enrollment')
