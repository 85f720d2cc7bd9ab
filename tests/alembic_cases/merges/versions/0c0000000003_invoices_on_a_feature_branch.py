"""Invoices, on a feature branch

Revision ID: 0c0000000003
"""

import sqlalchemy as sa
from alembic import op

revision = "0c0000000003"
down_revision = "0b0000000002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
    )


def downgrade():
    op.drop_table("invoices")
