"""Product names

Revision ID: 3d4e5f607182
Revises: 2c3d4e5f6071
"""

import sqlalchemy as sa
from alembic import op

revision = "3d4e5f607182"
down_revision = "2c3d4e5f6071"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("products", sa.Column("name", sa.Text, nullable=True))


def downgrade():
    op.drop_column("products", "name")
