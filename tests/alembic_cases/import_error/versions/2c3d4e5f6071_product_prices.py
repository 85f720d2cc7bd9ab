"""Product prices

Revision ID: 2c3d4e5f6071
Revises: 1b2c3d4e5f60
"""

import sqlalchemy as sa
from alembic import op
from shop.types import money

revision = "2c3d4e5f6071"
down_revision = "1b2c3d4e5f60"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("products", sa.Column("price", money(), nullable=False, server_default="0"))


def downgrade():
    op.drop_column("products", "price")
