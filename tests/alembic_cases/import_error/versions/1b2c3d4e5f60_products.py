"""Products

Revision ID: 1b2c3d4e5f60
"""

import sqlalchemy as sa
from alembic import op

revision = "1b2c3d4e5f60"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("products", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("products")
