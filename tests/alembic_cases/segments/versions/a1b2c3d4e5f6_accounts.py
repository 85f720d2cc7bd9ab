"""Accounts

Revision ID: a1b2c3d4e5f6
"""

import sqlalchemy as sa
from alembic import op

revision = "a1b2c3d4e5f6"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.Text, nullable=True),
        sa.CheckConstraint("email LIKE '%@%'", name="ck_accounts_email"),
    )


def downgrade():
    op.drop_table("accounts")
