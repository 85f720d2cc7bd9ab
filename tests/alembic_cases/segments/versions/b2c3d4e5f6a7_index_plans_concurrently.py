"""Plans, indexed concurrently; the email check becomes a unique email

A revision as real ones are written: a short lock_timeout for the ALTERs before and
after the index, which must be built outside a transaction.

Revision ID: b2c3d4e5f6a7
Revises: a1b2c3d4e5f6
"""

import sqlalchemy as sa
from alembic import op

revision = "b2c3d4e5f6a7"
down_revision = "a1b2c3d4e5f6"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "settings_seen",
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("lock_timeout", sa.Text, nullable=False),
    )
    op.execute("INSERT INTO settings_seen SELECT 'before', current_setting('lock_timeout')")
    op.add_column("accounts", sa.Column("plan", sa.Text, nullable=True))
    op.alter_column("accounts", "email", existing_type=sa.Text, nullable=False)
    with op.get_context().autocommit_block():
        op.create_index("ix_accounts_plan", "accounts", ["plan"], postgresql_concurrently=True)
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("INSERT INTO settings_seen SELECT 'after', current_setting('lock_timeout')")
    op.drop_constraint("ck_accounts_email", "accounts", type_="check")
    op.create_unique_constraint("uq_accounts_email", "accounts", ["email"])


def downgrade():
    op.drop_constraint("uq_accounts_email", "accounts", type_="unique")
    op.create_check_constraint("ck_accounts_email", "accounts", "email LIKE '%@%'")
    with op.get_context().autocommit_block():
        op.drop_index("ix_accounts_plan", table_name="accounts", postgresql_concurrently=True)
    op.alter_column("accounts", "email", existing_type=sa.Text, nullable=True)
    op.drop_column("accounts", "plan")
    op.drop_table("settings_seen")
