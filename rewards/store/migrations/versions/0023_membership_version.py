"""The membership version: one number that every statement changing a member, their groups or
their platform accounts bumps in its own transaction (PostgreSQL statement triggers), so a
process may keep what a Slack kudos looked up for the next one and have that kudos' statement
write nothing if anyone changed meanwhile.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 23:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

# The tables `rewards.services.members.remember_accounts` reads.
WATCHED = ('member', 'member_group', 'platform_account')


def upgrade() -> None:
    op.create_table('membership_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    if op.get_bind().dialect.name != 'postgresql':
        return  # (SQLite: no process keeps look-ups across turns there)
    # The row is created by the first change; until then nothing is kept.
    # BEFORE the statement: a writer locks the version row before any member row, so two
    # writers of members queue on it instead of waiting on each other's rows in opposite orders
    # (and member writes are serialised: an admission waits for a running import to commit).
    # Once per transaction (a flag local to it, undone with it, savepoints included): every
    # bump updates the one row, and an import's 100,000 single-row statements each updating it
    # again made a chain of 100,000 versions of that row for each to walk (22 s became 313 s).
    op.execute(
        "CREATE OR REPLACE FUNCTION bump_membership_version() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "IF current_setting('rewards.membership_bumped', true) IS DISTINCT FROM 'on' THEN "
        "INSERT INTO membership_version (id, version) VALUES (1, 1) "
        "ON CONFLICT (id) DO UPDATE SET version = membership_version.version + 1; "
        "PERFORM set_config('rewards.membership_bumped', 'on', true); "
        "END IF; RETURN NULL; END $$"
    )
    for table in WATCHED:
        op.execute(
            f"CREATE TRIGGER {table}_bumps_membership_version "
            f"BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bump_membership_version()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in WATCHED:
            op.execute(f"DROP TRIGGER {table}_bumps_membership_version ON {table}")
        op.execute("DROP FUNCTION bump_membership_version()")
    op.drop_table('membership_version')
