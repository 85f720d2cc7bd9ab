"""Members

Revision ID: 4e5f60718293
"""

import sqlalchemy as sa
from alembic import op

revision = "4e5f60718293"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "members",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    )


def downgrade():
    op.drop_table("members")
