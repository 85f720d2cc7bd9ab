"""Order status, backfilled online only

Revision ID: d2e3f4a5b6c7
Revises: c1d2e3f4a5b6
"""

import sqlalchemy as sa
from alembic import context, op

revision = "d2e3f4a5b6c7"
down_revision = "c1d2e3f4a5b6"
branch_labels = None
depends_on = None


def upgrade():
    op.alter_column("orders", "status", existing_type=sa.Text, server_default="new")
    if not context.is_offline_mode():
        op.execute("UPDATE orders SET status = 'new' WHERE status IS NULL")


def downgrade():
    op.alter_column("orders", "status", existing_type=sa.Text, server_default=None)
