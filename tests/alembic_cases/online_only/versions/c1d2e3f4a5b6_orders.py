"""Orders

Revision ID: c1d2e3f4a5b6
"""

import sqlalchemy as sa
from alembic import op

revision = "c1d2e3f4a5b6"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("total_cents", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=True),
    )


def downgrade():
    op.drop_table("orders")
