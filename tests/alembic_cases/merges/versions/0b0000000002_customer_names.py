"""Customer names

Revision ID: 0b0000000002
"""

import sqlalchemy as sa
from alembic import op

revision = "0b0000000002"
down_revision = "0a0000000001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("customers", sa.Column("name", sa.Text, nullable=True))


def downgrade():
    op.drop_column("customers", "name")
