"""Items

Revision ID: 7b8c9d0e1f2a
"""

import sqlalchemy as sa
from alembic import op

revision = "7b8c9d0e1f2a"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("items")
