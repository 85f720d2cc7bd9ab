"""Customers

Revision ID: 0a0000000001
"""

import sqlalchemy as sa
from alembic import op

revision = "0a0000000001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("customers", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("customers")
